//! Links the `forge` executable at a fixed address (non-PIE) on Linux.
//!
//! Why: every `forge sandbox` and `forge shell` pays forge's own start-up, and a
//! position-independent forge starts by applying ~15 000 relative relocations,
//! touching (and faulting in) a page of `.data.rel.ro` for each cluster. Linked at a
//! fixed address the linker resolves them once, at link time: `forge --version` took
//! 180 page faults instead of 235 (perf stat; a build with the static relocation
//! model also cut its CPU time from 2.35 to 1.62 ms, on a loaded machine). The price is that
//! the executable itself is not randomized by ASLR (its libraries, heap, stack and
//! mmaps still are); forge runs no untrusted code in its own address space (builds
//! run in the sandbox), so the start-up cost is the better trade.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    // A fully static forge (`-C target-feature=+crt-static`) has no relocations to
    // save and must stay static-pie: -no-pie would give it a loader it cannot use.
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let static_crt = features.split(',').any(|f| f == "crt-static");
    if os == "linux" && !static_crt {
        println!("cargo:rustc-link-arg-bin=forge=-no-pie");
    }
    println!("cargo::rustc-check-cfg=cfg(forge_musl)");
    println!("cargo:rerun-if-env-changed=FORGE_LINK_MUSL");
    if std::env::var_os("FORGE_LINK_MUSL").is_some_and(|v| v == "1") {
        link_musl();
    }
    println!("cargo:rerun-if-changed=build.rs");
}

/// `cargo forge-release-musl`: std for x86_64-unknown-linux-gnu, linked by musl-gcc
/// against musl's static libc, with the glibc-only symbols std and libgcc use
/// answered by src/musl_shim.c. Why: glibc's start probes the CPU caches with
/// `cpuid`, an exit to the hypervisor on a VM each, about half a millisecond per
/// forge start there (docs/architecture.md, "Cost").
fn link_musl() {
    println!("cargo:rerun-if-changed=src/musl_shim.c");
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("musl_shim.o");
    let status =
        std::process::Command::new("musl-gcc").args(["-O2", "-Wall", "-c", "src/musl_shim.c", "-o"]).arg(&out).status();
    match status {
        Ok(s) if s.success() => {}
        other => panic!("FORGE_LINK_MUSL=1 needs musl-gcc (apt-get install musl-tools): {other:?}"),
    }
    // After Rust's own libraries, so that their glibc-only references find the shim;
    // libc.a again for what the shim itself needs.
    println!("cargo:rustc-link-arg-bin=forge={}", out.display());
    println!("cargo:rustc-link-arg-bin=forge=-l:libc.a");
    println!("cargo:rustc-cfg=forge_musl");
}
