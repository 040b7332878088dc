//! Link libdeissn from $DEISSN_LIB_DIR, else the repository's build tree (with an rpath, so
//! tests and examples run without LD_LIBRARY_PATH), else the system's library path.
use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DEISSN_LIB_DIR");
    let tree = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap()).join("../../../build/lib");
    // A missing file counts as changed, so building the library later is noticed.
    println!("cargo:rerun-if-changed={}", tree.join("libdeissn.so").display());
    if let Some(dir) = env::var_os("DEISSN_LIB_DIR") {
        println!("cargo:rustc-link-search=native={}", PathBuf::from(dir).display());
    } else if let Ok(tree) = tree.join("libdeissn.so").canonicalize() {
        let dir = tree.parent().unwrap().display().to_string();
        println!("cargo:rustc-link-search=native={dir}");
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        // Dependants read this as DEP_DEISSN_RPATH to add the same rpath to their binaries.
        println!("cargo:rpath={dir}");
    }
    println!("cargo:rustc-link-lib=dylib=deissn");
}
