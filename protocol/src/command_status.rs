//! `command_status`: the result code of a response (reference §4).

use std::fmt;

/// An SMPP `command_status`. Open newtype: vendor and future values parse and
/// print as `CommandStatus(0x…)`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct CommandStatus(pub u32);

macro_rules! statuses {
    ($($(#[$doc:meta])* $name:ident = $value:expr;)*) => {
        impl CommandStatus {
            $(
                $(#[$doc])*
                pub const $name: CommandStatus = CommandStatus($value);
            )*

            /// Spec name (`"ESME_RINVBNDSTS"`), or `None` for a value SMPP v3.4 does not define.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $(CommandStatus::$name => Some(stringify!($name)),)*
                    _ => None,
                }
            }

            /// Every status defined by SMPP v3.4 (48 values).
            pub const ALL: &'static [CommandStatus] = &[$(CommandStatus::$name),*];
        }
    };
}

statuses! {
    /// Success (`0x00000000`).
    ESME_ROK = 0x00000000;
    /// Message length invalid (`0x00000001`).
    ESME_RINVMSGLEN = 0x00000001;
    /// command_length invalid (`0x00000002`).
    ESME_RINVCMDLEN = 0x00000002;
    /// command_id unknown or invalid (`0x00000003`).
    ESME_RINVCMDID = 0x00000003;
    /// PDU not allowed in the current bind state (`0x00000004`).
    ESME_RINVBNDSTS = 0x00000004;
    /// ESME is already bound (`0x00000005`).
    ESME_RALYBND = 0x00000005;
    /// priority_flag invalid (`0x00000006`).
    ESME_RINVPRTFLG = 0x00000006;
    /// registered_delivery invalid (`0x00000007`).
    ESME_RINVREGDLVFLG = 0x00000007;
    /// Internal system error (`0x00000008`).
    ESME_RSYSERR = 0x00000008;
    /// Source address invalid (`0x0000000A`).
    ESME_RINVSRCADR = 0x0000000A;
    /// Destination address invalid (`0x0000000B`).
    ESME_RINVDSTADR = 0x0000000B;
    /// message_id invalid or unknown (`0x0000000C`).
    ESME_RINVMSGID = 0x0000000C;
    /// Bind failed (`0x0000000D`).
    ESME_RBINDFAIL = 0x0000000D;
    /// Password wrong (`0x0000000E`).
    ESME_RINVPASWD = 0x0000000E;
    /// system_id unknown (`0x0000000F`).
    ESME_RINVSYSID = 0x0000000F;
    /// cancel_sm failed (`0x00000011`).
    ESME_RCANCELFAIL = 0x00000011;
    /// replace_sm failed (`0x00000013`).
    ESME_RREPLACEFAIL = 0x00000013;
    /// Message queue full (`0x00000014`).
    ESME_RMSGQFUL = 0x00000014;
    /// service_type invalid (`0x00000015`).
    ESME_RINVSERTYP = 0x00000015;
    /// number_of_dests invalid (`0x00000033`).
    ESME_RINVNUMDESTS = 0x00000033;
    /// Distribution list name invalid (`0x00000034`).
    ESME_RINVDLNAME = 0x00000034;
    /// dest_flag invalid (`0x00000040`).
    ESME_RINVDESTFLAG = 0x00000040;
    /// Invalid submit with replace (`0x00000042`).
    ESME_RINVSUBREP = 0x00000042;
    /// esm_class invalid (`0x00000043`).
    ESME_RINVESMCLASS = 0x00000043;
    /// Cannot submit to a distribution list (`0x00000044`).
    ESME_RCNTSUBDL = 0x00000044;
    /// submit_sm or submit_multi failed (`0x00000045`).
    ESME_RSUBMITFAIL = 0x00000045;
    /// Source TON invalid (`0x00000048`).
    ESME_RINVSRCTON = 0x00000048;
    /// Source NPI invalid (`0x00000049`).
    ESME_RINVSRCNPI = 0x00000049;
    /// Destination TON invalid (`0x00000050`).
    ESME_RINVDSTTON = 0x00000050;
    /// Destination NPI invalid (`0x00000051`).
    ESME_RINVDSTNPI = 0x00000051;
    /// system_type invalid (`0x00000053`).
    ESME_RINVSYSTYP = 0x00000053;
    /// replace_if_present_flag invalid (`0x00000054`).
    ESME_RINVREPFLAG = 0x00000054;
    /// Invalid number of messages (`0x00000055`).
    ESME_RINVNUMMSGS = 0x00000055;
    /// Throttling: over the allowed rate (`0x00000058`).
    ESME_RTHROTTLED = 0x00000058;
    /// schedule_delivery_time invalid (`0x00000061`).
    ESME_RINVSCHED = 0x00000061;
    /// validity_period invalid (`0x00000062`).
    ESME_RINVEXPIRY = 0x00000062;
    /// sm_default_msg_id invalid (`0x00000063`).
    ESME_RINVDFTMSGID = 0x00000063;
    /// Receiver temporary application error (`0x00000064`).
    ESME_RX_T_APPN = 0x00000064;
    /// Receiver permanent application error (`0x00000065`).
    ESME_RX_P_APPN = 0x00000065;
    /// Receiver rejects the message (`0x00000066`).
    ESME_RX_R_APPN = 0x00000066;
    /// query_sm failed (`0x00000067`).
    ESME_RQUERYFAIL = 0x00000067;
    /// Error in the TLV part of the body (`0x000000C0`).
    ESME_RINVOPTPARSTREAM = 0x000000C0;
    /// TLV not allowed (`0x000000C1`).
    ESME_ROPTPARNOTALLWD = 0x000000C1;
    /// TLV length invalid (`0x000000C2`).
    ESME_RINVPARLEN = 0x000000C2;
    /// An expected TLV is missing (`0x000000C3`).
    ESME_RMISSINGOPTPARAM = 0x000000C3;
    /// TLV value invalid (`0x000000C4`).
    ESME_RINVOPTPARAMVAL = 0x000000C4;
    /// Delivery failed (`0x000000FE`).
    ESME_RDELIVERYFAILURE = 0x000000FE;
    /// Unknown error (`0x000000FF`).
    ESME_RUNKNOWNERR = 0x000000FF;
}

impl CommandStatus {
    /// True for `ESME_ROK`.
    pub fn is_ok(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Debug for CommandStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "CommandStatus(0x{:08x})", self.0),
        }
    }
}

impl fmt::Display for CommandStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl From<u32> for CommandStatus {
    fn from(v: u32) -> Self {
        CommandStatus(v)
    }
}

impl From<CommandStatus> for u32 {
    fn from(v: CommandStatus) -> Self {
        v.0
    }
}

/// Serialized as the spec name when known, otherwise as the number.
#[cfg(feature = "serde")]
impl serde::Serialize for CommandStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.name() {
            Some(n) => s.serialize_str(n),
            None => s.serialize_u32(self.0),
        }
    }
}
