//! The committed bindings must be what bindgen makes of the current header.
use std::path::Path;
use std::process::Command;
use std::{env, fs, process};

#[test]
fn committed_bindings_match_the_header() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let committed = fs::read_to_string(dir.join("src/bindings.rs")).unwrap();
    let version = match Command::new("bindgen").arg("--version").output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        _ => {
            println!("skipped: bindgen is not installed, so the bindings cannot be compared");
            return;
        }
    };
    // Other bindgen versions format differently; only the one that made the file can judge it.
    let made_by = committed.lines().next().unwrap_or("");
    let number = version.rsplit(' ').next().unwrap_or("");
    if !made_by.contains(&format!("rust-bindgen {number} ")) {
        println!("skipped: {version} is not the bindgen that made src/bindings.rs ({made_by})");
        return;
    }
    let fresh_path = env::temp_dir().join(format!("deissn-bindings-{}.rs", process::id()));
    let status = Command::new(dir.join("regenerate.sh")).arg(&fresh_path).status().unwrap();
    assert!(status.success(), "regenerate.sh failed");
    let fresh = fs::read_to_string(&fresh_path).unwrap();
    fs::remove_file(&fresh_path).unwrap();
    if let Some((i, (new, old))) =
        fresh.lines().zip(committed.lines()).enumerate().find(|(_, (a, b))| a != b)
    {
        panic!("src/bindings.rs is out of date with include/deissn.h (line {}: header gives \
                `{new}`, committed `{old}`): run bindings/rust/deissn-sys/regenerate.sh", i + 1);
    }
    assert_eq!(fresh.lines().count(), committed.lines().count(),
               "src/bindings.rs is out of date with include/deissn.h: run regenerate.sh");
}

#[test]
fn links_and_reports_its_version() {
    let v = unsafe { deissn_sys::deissn_version_number() };
    assert_eq!(v / 100, deissn_sys::DEISSN_VERSION_NUMBER / 100, "library {v} for header {}",
               deissn_sys::DEISSN_VERSION_NUMBER);
}
