//! Mapping permissions and attributes as the trace spells them (`r w x c m p`).

use std::fmt;

/// IOMMU_* style protection flags. `x` absent means no-exec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Prot(u8);

impl Prot {
    pub const READ: Prot = Prot(1);
    pub const WRITE: Prot = Prot(2);
    pub const EXEC: Prot = Prot(4);
    pub const CACHE: Prot = Prot(8);
    pub const MMIO: Prot = Prot(16);
    pub const PRIV: Prot = Prot(32);
    pub const RW: Prot = Prot(3);
    const LETTERS: [(char, Prot); 6] = [
        ('r', Prot::READ),
        ('w', Prot::WRITE),
        ('x', Prot::EXEC),
        ('c', Prot::CACHE),
        ('m', Prot::MMIO),
        ('p', Prot::PRIV),
    ];

    pub const fn bits(self) -> u8 {
        self.0
    }
    /// Keeps only the defined flags.
    pub const fn from_bits_truncate(b: u8) -> Prot {
        Prot(b & 0x3f)
    }
    pub const fn contains(self, o: Prot) -> bool {
        self.0 & o.0 == o.0
    }
    pub const fn union(self, o: Prot) -> Prot {
        Prot(self.0 | o.0)
    }
    pub const fn readable(self) -> bool {
        self.contains(Prot::READ)
    }
    pub const fn writable(self) -> bool {
        self.contains(Prot::WRITE)
    }

    /// Parses letters such as `rw`, `rwxc`; `-` or the empty string is no permission.
    pub fn parse(s: &str) -> Option<Prot> {
        let mut p = Prot(0);
        if s == "-" {
            return Some(p);
        }
        for ch in s.chars() {
            let (_, f) = Self::LETTERS.iter().find(|(c, _)| *c == ch)?;
            p = p.union(*f);
        }
        Some(p)
    }
}

impl std::ops::BitOr for Prot {
    type Output = Prot;
    fn bitor(self, o: Prot) -> Prot {
        self.union(o)
    }
}

impl fmt::Display for Prot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("-");
        }
        for (c, p) in Self::LETTERS {
            if self.contains(p) {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}
