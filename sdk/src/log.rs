//! Logging to the runtime's log: `weft_sdk::log::info!("mapped {n} segments")`.
//!
//! Records are tagged by the runtime with the plugin's name and the message
//! id. Patient data may only be logged at `debug` or `trace`: operators keep
//! `info` logs and ship them off the box.

/// Severity of a log record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Very detailed diagnostics.
    Trace,
    /// Diagnostics; the only levels at which patient data may be logged.
    Debug,
    /// Normal operation.
    Info,
    /// Something unusual that did not stop the message.
    Warn,
    /// Something failed.
    Error,
}

/// Writes one record. The macros below are the usual way in.
pub fn write(level: Level, message: &str) {
    crate::host::log(level, message)
}

#[doc(hidden)]
#[macro_export]
macro_rules! __log {
    ($level:ident, $($arg:tt)*) => {
        $crate::log::write($crate::log::Level::$level, &::std::format!($($arg)*))
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __log_trace { ($($arg:tt)*) => { $crate::__log!(Trace, $($arg)*) }; }
#[doc(hidden)]
#[macro_export]
macro_rules! __log_debug { ($($arg:tt)*) => { $crate::__log!(Debug, $($arg)*) }; }
#[doc(hidden)]
#[macro_export]
macro_rules! __log_info { ($($arg:tt)*) => { $crate::__log!(Info, $($arg)*) }; }
#[doc(hidden)]
#[macro_export]
macro_rules! __log_warn { ($($arg:tt)*) => { $crate::__log!(Warn, $($arg)*) }; }
#[doc(hidden)]
#[macro_export]
macro_rules! __log_error { ($($arg:tt)*) => { $crate::__log!(Error, $($arg)*) }; }

/// Logs at debug level, `format!`-style. The only level for patient data.
pub use crate::__log_debug as debug;
/// Logs at error level, `format!`-style.
pub use crate::__log_error as error;
/// Logs at info level, `format!`-style.
pub use crate::__log_info as info;
/// Logs at trace level, `format!`-style.
pub use crate::__log_trace as trace;
/// Logs at warn level, `format!`-style.
pub use crate::__log_warn as warn;
