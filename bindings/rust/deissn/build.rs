//! Give this crate's tests and examples the rpath deissn-sys found (the build-tree case).
fn main() {
    if let Ok(dir) = std::env::var("DEP_DEISSN_RPATH") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
