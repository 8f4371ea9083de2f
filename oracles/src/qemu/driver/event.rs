//! Event queue records (32 bytes) as QEMU writes them.

/// A decoded event record. `class`: 0 = CD, 1 = TT (stage-1 table walk), 2 = IN (input).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Event {
    pub ty: u8,
    pub sid: u32,
    /// True for a read access.
    pub rnw: bool,
    /// True when the fault came from stage 2.
    pub s2: bool,
    pub class: u8,
    /// Faulting input address (F_CD_FETCH: QEMU puts the fetch address here).
    pub input_addr: u64,
    /// IPA or fetch address (W6/W7).
    pub ipa: u64,
}

pub const C_BAD_STREAMID: u8 = 0x02;
pub const F_STE_FETCH: u8 = 0x03;
pub const C_BAD_STE: u8 = 0x04;
pub const F_CD_FETCH: u8 = 0x09;
pub const C_BAD_CD: u8 = 0x0a;
pub const F_WALK_EABT: u8 = 0x0b;
pub const F_TRANSLATION: u8 = 0x10;
pub const F_ADDR_SIZE: u8 = 0x11;
pub const F_ACCESS: u8 = 0x12;
pub const F_PERMISSION: u8 = 0x13;

impl Event {
    pub const BYTES: usize = 32;

    pub fn decode(rec: &[u8]) -> Event {
        let w = |i: usize| u32::from_le_bytes(rec[4 * i..4 * i + 4].try_into().unwrap());
        Event {
            ty: (w(0) & 0xff) as u8,
            sid: w(1),
            rnw: w(3) & (1 << 3) != 0,
            s2: w(3) & (1 << 7) != 0,
            class: ((w(3) >> 8) & 3) as u8,
            input_addr: w(4) as u64 | (w(5) as u64) << 32,
            ipa: w(6) as u64 | (w(7) as u64) << 32,
        }
    }

    /// The architectural name of the event type.
    pub fn name(&self) -> &'static str {
        match self.ty {
            0x01 => "F_UUT",
            C_BAD_STREAMID => "C_BAD_STREAMID",
            F_STE_FETCH => "F_STE_FETCH",
            C_BAD_STE => "C_BAD_STE",
            0x05 => "F_BAD_ATS_TREQ",
            0x06 => "F_STREAM_DISABLED",
            0x07 => "F_TRANSL_FORBIDDEN",
            0x08 => "C_BAD_SUBSTREAMID",
            F_CD_FETCH => "F_CD_FETCH",
            C_BAD_CD => "C_BAD_CD",
            F_WALK_EABT => "F_WALK_EABT",
            F_TRANSLATION => "F_TRANSLATION",
            F_ADDR_SIZE => "F_ADDR_SIZE",
            F_ACCESS => "F_ACCESS",
            F_PERMISSION => "F_PERMISSION",
            0x20 => "F_TLB_CONFLICT",
            0x21 => "F_CFG_CONFLICT",
            0x24 => "E_PAGE_REQUEST",
            _ => "UNKNOWN",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_stage2_read_translation_fault() {
        let words: [u32; 8] = [
            0x10,
            0x18,
            0,
            (1 << 3) | (1 << 7) | (2 << 8),
            0x3456_7000,
            0x12,
            0x5000,
            0x1,
        ];
        let rec: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let e = Event::decode(&rec);
        assert_eq!(
            e,
            Event {
                ty: 0x10,
                sid: 0x18,
                rnw: true,
                s2: true,
                class: 2,
                input_addr: 0x12_3456_7000,
                ipa: 0x1_0000_5000
            }
        );
        assert_eq!(e.name(), "F_TRANSLATION");
    }
}
