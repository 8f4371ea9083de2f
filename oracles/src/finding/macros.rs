//! One declaration per oracle enum: its variants with their messages (thiserror) and the
//! stable kind name of each, listed once so the list of kinds cannot drift from the enum.

/// `finding_enum! { pub enum Name: "oracle" { Variant { fields } = "kind" ("message", ...), } }`
macro_rules! finding_enum {
    (
        $(#[$m:meta])*
        pub enum $name:ident : $oracle:literal {
            $(
                $(#[$vm:meta])*
                $var:ident $({ $($(#[$fm:meta])* $f:ident : $t:ty),* $(,)? })? = $kind:literal
                    ($($msg:tt)+)
            ),* $(,)?
        }
    ) => {
        $(#[$m])*
        #[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
        pub enum $name {
            $(
                $(#[$vm])*
                #[error($($msg)+)]
                $var $({ $($(#[$fm])* $f: $t),* })?,
            )*
        }

        impl $name {
            /// Every kind of this oracle, in declaration order.
            pub const KINDS: &'static [&'static str] = &[$(concat!($oracle, "/", $kind)),*];

            /// The stable name of this variant, `oracle/what`.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(Self::$var { .. } => concat!($oracle, "/", $kind),)*
                }
            }
        }
    };
}
