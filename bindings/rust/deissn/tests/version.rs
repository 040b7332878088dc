//! The crates' versions are the library's: DEISSN_VERSION_* of include/deissn.h.
mod common;

use common::repo;

/// MAJOR.MINOR.PATCH from the header's DEISSN_VERSION_MAJOR/MINOR/PATCH.
fn header_version() -> String {
    let header = std::fs::read_to_string(repo().join("include/deissn.h")).unwrap();
    let part = |name: &str| {
        let key = format!("#define DEISSN_VERSION_{name} ");
        let line = header.lines().find(|l| l.starts_with(&key))
            .unwrap_or_else(|| panic!("include/deissn.h has no {key}"));
        line[key.len()..].trim().parse::<u32>().unwrap()
    };
    format!("{}.{}.{}", part("MAJOR"), part("MINOR"), part("PATCH"))
}

/// The `version = "..."` of a Cargo.toml's [package].
fn manifest_version(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let package = text.split("\n[").find(|s| s.starts_with("[package]") || s.starts_with("package]"))
        .unwrap_or_else(|| panic!("{} has no [package]", path.display()));
    let line = package.lines().find(|l| l.trim_start().starts_with("version"))
        .unwrap_or_else(|| panic!("{} has no package version", path.display()));
    line.split('"').nth(1).unwrap().to_string()
}

#[test]
fn crate_versions_are_the_headers() {
    let want = header_version();
    assert_eq!(env!("CARGO_PKG_VERSION"), want, "bindings/rust/deissn/Cargo.toml");
    let sys = repo().join("bindings/rust/deissn-sys/Cargo.toml");
    assert_eq!(manifest_version(&sys), want, "{}", sys.display());
    assert_eq!(deissn::version(), want, "the loaded libdeissn");
}
