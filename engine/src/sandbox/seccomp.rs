//! A seccomp filter that refuses (EPERM) every chmod that would set a setuid or
//! setgid bit, as Nix's sandbox does: the nosuid output mount makes such bits inert
//! inside, forge strips them after the run, and this stops them ever appearing on the
//! host while the build runs. Everything else is allowed.

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
/// x32 syscalls on x86_64 carry this bit; forge never needs them, so they are refused.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
const SET_ID_BITS: u32 = 0o6000;

const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;
/// Low 32 bits of syscall argument `i` (little-endian seccomp_data).
const fn arg(i: u32) -> u32 {
    16 + 8 * i
}

/// (syscall number, index of its mode argument) of the chmod family, per arch.
fn chmod_calls(arch: u32) -> &'static [(u32, u32)] {
    match arch {
        // chmod, fchmod, fchmodat, fchmodat2
        AUDIT_ARCH_X86_64 => &[(90, 1), (91, 1), (268, 2), (452, 2)],
        AUDIT_ARCH_I386 => &[(15, 1), (94, 1), (306, 2), (452, 2)],
        // fchmod, fchmodat, fchmodat2 (no chmod on arm64)
        AUDIT_ARCH_AARCH64 => &[(52, 1), (53, 2), (452, 2)],
        _ => &[],
    }
}

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter { code: code as u16, jt: 0, jf: 0, k }
}

fn jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code: code as u16, jt, jf, k }
}

const LD: u32 = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
const JEQ: u32 = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
const JGE: u32 = libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K;
const JSET: u32 = libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K;
const RET: u32 = libc::BPF_RET | libc::BPF_K;
const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const DENY: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;

/// The instructions for one architecture: skipped entirely when the arch differs.
fn section(arch: u32) -> Vec<libc::sock_filter> {
    let mut body = vec![stmt(LD, OFFSET_NR)];
    if arch == AUDIT_ARCH_X86_64 {
        body.extend([jump(JGE, X32_SYSCALL_BIT, 0, 1), stmt(RET, DENY)]);
    }
    for &(nr, mode) in chmod_calls(arch) {
        body.extend([
            jump(JEQ, nr, 0, 4),
            stmt(LD, arg(mode)),
            jump(JSET, SET_ID_BITS, 0, 1),
            stmt(RET, DENY),
            stmt(RET, ALLOW),
        ]);
    }
    body.push(stmt(RET, ALLOW));
    let mut out = vec![stmt(LD, OFFSET_ARCH), jump(JEQ, arch, 0, body.len() as u8)];
    out.extend(body);
    out
}

/// The whole program: the native arch, then 32-bit x86 on x86_64 hosts.
pub(crate) fn program() -> Vec<libc::sock_filter> {
    let arches: &[u32] =
        if cfg!(target_arch = "x86_64") { &[AUDIT_ARCH_X86_64, AUDIT_ARCH_I386] } else { &[AUDIT_ARCH_AARCH64] };
    let mut prog: Vec<libc::sock_filter> = arches.iter().flat_map(|&a| section(a)).collect();
    prog.push(stmt(RET, ALLOW));
    prog
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny interpreter of the instructions used, to check the jumps.
    fn verdict(prog: &[libc::sock_filter], data: &[u32; 16]) -> u32 {
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let i = prog[pc];
            let code = i.code as u32;
            match code {
                LD => acc = data[(i.k / 4) as usize],
                RET => return i.k,
                JEQ | JGE | JSET => {
                    let taken = match code {
                        JEQ => acc == i.k,
                        JGE => acc >= i.k,
                        _ => acc & i.k != 0,
                    };
                    pc += if taken { i.jt } else { i.jf } as usize;
                }
                _ => panic!("unexpected instruction {code:#x}"),
            }
            pc += 1;
        }
    }

    fn call(arch: u32, nr: u32, args: [u32; 3]) -> u32 {
        let mut data = [0u32; 16];
        data[0] = nr;
        data[1] = arch;
        for (i, a) in args.iter().enumerate() {
            data[(arg(i as u32) / 4) as usize] = *a;
        }
        verdict(&program(), &data)
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn set_id_chmods_are_refused_and_plain_ones_allowed() {
        let x = AUDIT_ARCH_X86_64;
        assert_eq!(call(x, 90, [0, 0o4755, 0]), DENY);
        assert_eq!(call(x, 90, [0, 0o755, 0]), ALLOW);
        assert_eq!(call(x, 91, [3, 0o2755, 0]), DENY);
        assert_eq!(call(x, 268, [0, 0, 0o6755]), DENY);
        assert_eq!(call(x, 268, [0, 0o4755, 0o755]), ALLOW, "fchmodat's mode is its third argument");
        assert_eq!(call(x, 452, [0, 0, 0o4000]), DENY);
        assert_eq!(call(AUDIT_ARCH_I386, 15, [0, 0o4755, 0]), DENY);
        assert_eq!(call(x, X32_SYSCALL_BIT | 90, [0, 0o755, 0]), DENY);
        assert_eq!(call(x, 0, [0, 0o4755, 0]), ALLOW, "read is not chmod");
    }
}
