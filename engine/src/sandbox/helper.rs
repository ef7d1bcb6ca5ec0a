//! The sandbox's init as a process image: forge re-executed as pid 1 of the new
//! namespaces (see [`super::spawn`]). Being a fresh exec, it is single-threaded and
//! may allocate, fork and do the whole setup that a threaded parent could not.

use std::io::Read;
use std::os::fd::AsRawFd;

use nix::errno::Errno;

use super::init;
use super::wire::{Failure, Report, Request, Step};

/// argv[1] that makes the forge binary act as the sandbox's init.
pub const HELPER_ARG: &str = "__forge-sandbox-helper";

/// The init process's whole life; returns its exit code.
pub(crate) fn main() -> i32 {
    match read_request() {
        // Which signals are ignored is not known here: the builder resets them all.
        Ok(req) => init::main(&req, None),
        Err(failure) => {
            Report::Failed(failure).send();
            125
        }
    }
}

/// Reads the JSON request from stdin (a memfd forge filled), then points stdin at
/// /dev/null.
fn read_request() -> Result<Request, Failure> {
    let mut bytes = Vec::with_capacity(16 << 10);
    std::io::stdin().read_to_end(&mut bytes).map_err(Failure::io(Step::Request, "stdin"))?;
    let req =
        serde_json::from_slice(&bytes).map_err(|e| Failure::new(Step::Request, Errno::EINVAL).detail(e.to_string()))?;
    let null = std::fs::File::open("/dev/null").map_err(Failure::io(Step::Request, "/dev/null"))?;
    nix::unistd::dup2(null.as_raw_fd(), 0).map_err(Failure::at(Step::Request, "/dev/null"))?;
    Ok(req)
}
