//! The `forge` binary: the command line over the recipes this repository ships.
//!
//! It has its own C `main` instead of Rust's runtime start (`no_main`): forge starts
//! once per `forge sandbox` and `forge shell`, so its start-up is part of every such
//! sandbox's cost, and Rust's start installs a stack-overflow guard for which glibc
//! parses /proc/self/maps: about 120 000 instructions and six system calls, an eighth
//! of a whole `forge sandbox -- /bin/true` in user space (callgrind). Without it a
//! stack overflow ends in a plain SIGSEGV instead of a message. Arguments and the
//! environment work as usual (glibc hands them to std before `main`).
//!
//! Linked against musl (`cargo forge-release-musl`, cfg `forge_musl`), the same C
//! `main` spares musl's `pthread_getattr_np` probing the main stack with one `mremap`
//! per page (33 system calls) for that guard. musl does not hand the arguments to
//! initializers as glibc does, so there `main` gives them to the CLI itself.
// Test builds keep the harness's own main (it lists and runs the tests).
#![cfg_attr(not(test), no_main)]

#[cfg(not(test))]
use std::ffi::{c_char, c_int};

// Compiled in every build so that its tests run; the allocator only with musl.
#[cfg_attr(not(forge_musl), allow(dead_code))]
mod arena;

/// musl's malloc maps and unmaps pages for the start's small allocations: serve
/// those from a static arena (see `arena`).
#[cfg(all(forge_musl, not(test)))]
#[global_allocator]
static ALLOCATOR: arena::Arena = arena::Arena::new();

/// The process entry point, called by the C runtime.
#[cfg(not(test))]
#[no_mangle]
pub extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    // As Rust's start does: writing to a closed pipe is an EPIPE error, not a kill.
    // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let code = run(argc, argv);
    // process::exit flushes stdout, which returning from here would not.
    std::process::exit(forge_cli::exit::number(code).into())
}

#[cfg(all(not(test), not(forge_musl)))]
fn run(_argc: c_int, _argv: *const *const c_char) -> std::process::ExitCode {
    forge_cli::main()
}

#[cfg(all(not(test), forge_musl))]
fn run(argc: c_int, argv: *const *const c_char) -> std::process::ExitCode {
    // SAFETY: the C runtime passes argc NUL-terminated strings in argv.
    forge_cli::main_from(unsafe { arguments(argc, argv) })
}

/// The C runtime's arguments as std would have collected them.
#[cfg(all(not(test), forge_musl))]
unsafe fn arguments(argc: c_int, argv: *const *const c_char) -> Vec<std::ffi::OsString> {
    use std::os::unix::ffi::OsStrExt;
    (0..usize::try_from(argc).unwrap_or(0))
        .map(|i| std::ffi::OsStr::from_bytes(std::ffi::CStr::from_ptr(*argv.add(i)).to_bytes()).to_owned())
        .collect()
}
