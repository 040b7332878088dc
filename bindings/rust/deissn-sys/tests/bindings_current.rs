//! The committed bindings must declare what bindgen makes of the current header.
//!
//! Bindgen versions differ in formatting, in `extern "C"` against `unsafe extern "C"` (0.71),
//! in how they check layouts (`#[test] fn bindgen_test_layout_*` against `const _: () = ...`)
//! and in their comments, so the two files are compared as sets of declarations: every
//! constant, type alias, struct, union, enum and function, as a sequence of tokens with the
//! comments, `#[doc]`/`#[test]`/`#[allow]` attributes and layout checks left out. Any bindgen
//! can then judge the file that another one made.
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::{env, fs, process};

/// Rust source as tokens: identifiers/numbers, string literals, single punctuation
/// characters; comments and trailing commas (`a,)` as `a)`, `c_int,>` as `c_int>`) dropped,
/// and array lengths without their suffix (0.60's `[u8; 6usize]` is 0.71's `[u8; 6]`), so
/// that formatting cannot change the result.
fn tokens(src: &str) -> Vec<String> {
    let c: Vec<char> = src.chars().collect();
    let (mut out, mut i) = (Vec::new(), 0);
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' { i += 1; }
        } else if ch == '/' && c.get(i + 1) == Some(&'*') {
            i += 2;
            while i + 1 < c.len() && !(c[i] == '*' && c[i + 1] == '/') { i += 1; }
            i += 2;
        } else if ch == '"' || (ch == 'b' && c.get(i + 1) == Some(&'"')) {
            let start = i;
            i += if ch == 'b' { 2 } else { 1 };
            while i < c.len() && c[i] != '"' { i += if c[i] == '\\' { 2 } else { 1 }; }
            i += 1;
            out.push(c[start..i.min(c.len())].iter().collect());
        } else if ch.is_alphanumeric() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') { i += 1; }
            let word: String = c[start..i].iter().collect();
            match word.strip_suffix("usize") {
                Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => out.push(n.into()),
                _ => out.push(word),
            }
        } else {
            if matches!(ch, ')' | ']' | '}' | '>') && out.last().map(String::as_str) == Some(",") {
                out.pop();
            }
            out.push(ch.to_string());
            i += 1;
        }
    }
    out
}

/// The index just past the bracketed group that opens at `t[i]` (`(`, `[` or `{`).
fn group_end(t: &[String], i: usize) -> usize {
    let mut depth = 0;
    for (j, tok) in t.iter().enumerate().skip(i) {
        match tok.as_str() {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => {
                depth -= 1;
                if depth == 0 { return j + 1; }
            }
            _ => {}
        }
    }
    t.len()
}

/// The declarations of a token stream, each as one string of space-separated tokens. The
/// C library's own reserved names (`pub type __int32_t = ...`, which 0.60 emits and 0.71 does
/// not) are not declarations of the header and are left out.
fn declarations(t: &[String], out: &mut BTreeSet<String>) {
    let mut i = 0;
    while i < t.len() {
        // the item: attributes, then tokens up to a `;` or a `{...}` at depth 0
        let mut item: Vec<&str> = Vec::new();
        let mut skip = false;
        while i < t.len() && t[i] == "#" {
            let open = if t.get(i + 1).map(String::as_str) == Some("!") { i + 2 } else { i + 1 };
            let end = group_end(t, open);
            let name = t.get(open + 1).map(String::as_str).unwrap_or("");
            skip |= name == "test";
            if !matches!(name, "doc" | "test" | "allow") {
                item.extend(t[i..end].iter().map(String::as_str));
            }
            i = end;
        }
        let start = i;
        let mut body = None;
        while i < t.len() {
            match t[i].as_str() {
                ";" => { i += 1; break; }
                "(" | "[" => i = group_end(t, i),
                "{" => {
                    let end = group_end(t, i);
                    body = Some((i + 1, end - 1));
                    i = end;
                    if t.get(i).map(String::as_str) == Some(";") { i += 1; }
                    break;
                }
                _ => i += 1,
            }
        }
        let head: Vec<&str> = t[start..i].iter().map(String::as_str).collect();
        let is_extern = matches!(head.as_slice(), ["extern", "\"C\"", "{", ..]
                                                 | ["unsafe", "extern", "\"C\"", "{", ..]);
        if is_extern {
            let (a, b) = body.unwrap();
            declarations(&t[a..b], out);          // the functions one by one
        } else if !skip && !head.is_empty() && !matches!(head.as_slice(), ["const", "_", ..])
            && !matches!(head.as_slice(), ["pub", "type", name, ..] if name.starts_with("__"))
        {
            item.extend(head);
            out.insert(item.join(" "));
        }
    }
}

fn declaration_set(src: &str) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    declarations(&tokens(src), &mut set);
    set
}

#[test]
fn committed_bindings_match_the_header() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let committed = fs::read_to_string(dir.join("src/bindings.rs")).unwrap();
    let version = match Command::new("bindgen").arg("--version").output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        _ => {
            println!("skipped: committed_bindings_match_the_header: bindgen is not installed, \
                      so the bindings cannot be compared with the header");
            return;
        }
    };
    let fresh_path = env::temp_dir().join(format!("deissn-bindings-{}.rs", process::id()));
    let status = Command::new(dir.join("regenerate.sh")).arg(&fresh_path).status().unwrap();
    assert!(status.success(), "regenerate.sh failed with {version}");
    let fresh = fs::read_to_string(&fresh_path).unwrap();
    fs::remove_file(&fresh_path).unwrap();
    let (new, old) = (declaration_set(&fresh), declaration_set(&committed));
    assert!(new.len() > 50, "{version} made only {} declarations of include/deissn.h", new.len());
    let missing: Vec<_> = new.difference(&old).collect();
    let stale: Vec<_> = old.difference(&new).collect();
    assert!(missing.is_empty() && stale.is_empty(),
            "src/bindings.rs is out of date with include/deissn.h ({version}): run \
             bindings/rust/deissn-sys/regenerate.sh\n  the header has, the file lacks: {missing:#?}\n  \
             the file has, the header lacks: {stale:#?}");
}

#[test]
fn formatting_and_bindgen_style_do_not_count() {
    // the same declarations as bindgen 0.60 and 0.71 write them
    let a = r#"/* automatically generated by rust-bindgen 0.60.1 */
pub const X: u32 = 1;
pub const V: &[u8; 6usize] = b"0.2.0\0";
pub type __int32_t = ::std::os::raw::c_int;
pub type cb = Option<unsafe extern "C" fn(x: i32) -> i32>;
#[repr(C)]
#[derive(Debug, Copy, Clone)]
pub struct s { pub a: i32, }
#[test]
fn bindgen_test_layout_s() { assert_eq!(::std::mem::size_of::<s>(), 4usize); }
extern "C" {
    pub fn f(x: *const s) -> i32;
}
extern "C" {
    #[doc = "g"]
    pub fn g();
}
"#;
    let b = r#"/* automatically generated by rust-bindgen 0.71.1 */

pub const X : u32 = 1 ;
pub const V: &[u8; 6] = b"0.2.0\0";
pub type cb = Option<
    unsafe extern "C" fn(x: i32) -> i32,
>;
#[repr(C)]
#[derive(Debug, Copy, Clone)]
pub struct s {
    pub a: i32,
}
#[allow(clippy::unnecessary_operation, clippy::identity_op)]
const _: () = {
    ["Size of s"][::std::mem::size_of::<s>() - 4usize];
};
unsafe extern "C" {
    pub fn g();
    pub fn f(
        x: *const s,
    ) -> i32;
}
"#;
    assert_eq!(declaration_set(a), declaration_set(b));
    assert_eq!(declaration_set(a).len(), 6);
    // and what a header change does to them counts
    for changed in [b.replace("a: i32", "a: i64"), b.replace(") -> i32;", ") -> u32;"),
                    b.replace("pub fn g();", ""), b.replace("= 1", "= 2"),
                    b.replace("#[repr(C)]", "#[repr(C, packed)]"),
                    b.replace("x: *const s", "x: *mut s"), b.replace("6]", "7]"),
                    b.replace("fn(x: i32) -> i32", "fn(x: i32)")] {
        assert_ne!(declaration_set(a), declaration_set(&changed), "{changed}");
    }
}

#[test]
fn links_and_reports_its_version() {
    let v = unsafe { deissn_sys::deissn_version_number() };
    assert_eq!(v / 100, deissn_sys::DEISSN_VERSION_NUMBER / 100, "library {v} for header {}",
               deissn_sys::DEISSN_VERSION_NUMBER);
}
