//! Enum names: the library's own (`deissn_enum_name` / `deissn_enum_value`), so that one
//! spelling, aliases included, holds in C, the tools and every binding. The crate keeps no
//! table of names.
use std::ffi::{CStr, CString};

use deissn_sys as sys;

use crate::error::{check, Error, ErrorKind, Result};

/// The canonical name of `value` of enum `kind`.
pub(crate) fn name(kind: sys::deissn_enum, value: i32) -> &'static str {
    // SAFETY: deissn_enum_name returns NULL or a static NUL-terminated string.
    let p = unsafe { sys::deissn_enum_name(kind as i32, value) };
    if p.is_null() {
        return "?";
    }
    unsafe { CStr::from_ptr(p) }.to_str().unwrap_or("?")
}

/// The value the library gives `s` in enum `kind`; its message lists the names otherwise.
pub(crate) fn value(kind: sys::deissn_enum, s: &str) -> Result<i32> {
    let c = CString::new(s).map_err(|_| Error::new(ErrorKind::InvalidArgument,
                                                   format!("the name {s:?} contains a NUL byte")))?;
    let mut v = 0i32;
    // SAFETY: c is NUL-terminated and v a valid output.
    check(unsafe { sys::deissn_enum_value(kind as i32, c.as_ptr(), &mut v) })?;
    Ok(v)
}

/// `raw()`, `from_raw()`, `name()`, `FromStr` (the library's names and aliases) and `Display`
/// (the canonical name) for a Rust enum mirroring a C one. `$unmapped` says what to do with
/// a C value the Rust enum has no variant for.
macro_rules! named_enum {
    ($ty:ident, $kind:ident, $unmapped:literal, { $($var:ident = $raw:ident),+ $(,)? }) => {
        impl $ty {
            pub(crate) fn raw(self) -> i32 {
                match self { $($ty::$var => deissn_sys::$raw as i32),+ }
            }
            pub(crate) fn from_raw(v: i32) -> Option<$ty> {
                $(if v == deissn_sys::$raw as i32 { return Some($ty::$var); })+
                None
            }
            /// The library's canonical name of this value (`deissn_enum_name`).
            pub fn name(self) -> &'static str {
                crate::names::name(deissn_sys::$kind, self.raw())
            }
        }
        impl std::str::FromStr for $ty {
            type Err = crate::Error;
            /// Parse a name as the library does (`deissn_enum_value`: canonical names and
            /// aliases, case and '-' vs '_' aside). Errors: `InvalidArgument` with the
            /// library's message listing the names.
            fn from_str(s: &str) -> crate::Result<$ty> {
                let v = crate::names::value(deissn_sys::$kind, s)?;
                $ty::from_raw(v).ok_or_else(|| crate::Error::new(
                    crate::ErrorKind::InvalidArgument, format!("'{s}': {}", $unmapped)))
            }
        }
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}
pub(crate) use named_enum;
