//! File capabilities as the kernel stores them in `security.capability`
//! (`struct vfs_cap_data`, revision 2), and the text form `setcap` takes.

use super::FsTreeError;

/// The xattr that holds file capabilities.
pub const XATTR_NAME: &str = "security.capability";

const VFS_CAP_REVISION_2: u32 = 0x0200_0000;
const VFS_CAP_REVISION_MASK: u32 = 0xff00_0000;
const VFS_CAP_FLAGS_EFFECTIVE: u32 = 0x0000_0001;

/// Capability names in kernel bit order (`include/uapi/linux/capability.h`).
const NAMES: [&str; 41] = [
    "cap_chown",
    "cap_dac_override",
    "cap_dac_read_search",
    "cap_fowner",
    "cap_fsetid",
    "cap_kill",
    "cap_setgid",
    "cap_setuid",
    "cap_setpcap",
    "cap_linux_immutable",
    "cap_net_bind_service",
    "cap_net_broadcast",
    "cap_net_admin",
    "cap_net_raw",
    "cap_ipc_lock",
    "cap_ipc_owner",
    "cap_sys_module",
    "cap_sys_rawio",
    "cap_sys_chroot",
    "cap_sys_ptrace",
    "cap_sys_pacct",
    "cap_sys_admin",
    "cap_sys_boot",
    "cap_sys_nice",
    "cap_sys_resource",
    "cap_sys_time",
    "cap_sys_tty_config",
    "cap_mknod",
    "cap_lease",
    "cap_audit_write",
    "cap_audit_control",
    "cap_setfcap",
    "cap_mac_override",
    "cap_mac_admin",
    "cap_syslog",
    "cap_wake_alarm",
    "cap_block_suspend",
    "cap_audit_read",
    "cap_perfmon",
    "cap_bpf",
    "cap_checkpoint_restore",
];

/// Encodes `setcap` text (`cap_net_raw+ep`, `cap_net_admin,cap_net_raw=eip`; several
/// clauses separated by spaces) as a `security.capability` value (VFS_CAP_REVISION_2,
/// 20 bytes).
///
/// ```
/// use forge_engine::fstree::capability_xattr;
/// let v = capability_xattr("cap_net_raw+ep").unwrap();
/// assert_eq!(v, [1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
/// ```
pub fn capability_xattr(text: &str) -> Result<Vec<u8>, FsTreeError> {
    let bad = |reason: String| FsTreeError::Capability { text: text.to_owned(), reason };
    let (mut permitted, mut inheritable, mut effective) = (0u64, 0u64, false);
    for clause in text.split_whitespace() {
        let split = clause.find(['+', '=']).ok_or_else(|| bad(format!("`{clause}` has no `+flags` or `=flags`")))?;
        let (names, flags) = (&clause[..split], &clause[split + 1..]);
        let mut mask = 0u64;
        for name in names.split(',') {
            let name = name.to_ascii_lowercase();
            let bit =
                NAMES.iter().position(|n| *n == name).ok_or_else(|| bad(format!("unknown capability `{name}`")))?;
            mask |= 1 << bit;
        }
        for f in flags.chars() {
            match f {
                'e' => effective = true,
                'p' => permitted |= mask,
                'i' => inheritable |= mask,
                _ => return Err(bad(format!("unknown flag `{f}` (use e, i, p)"))),
            }
        }
    }
    if permitted | inheritable == 0 {
        return Err(bad("no capability is permitted or inheritable".into()));
    }
    let magic = VFS_CAP_REVISION_2 | if effective { VFS_CAP_FLAGS_EFFECTIVE } else { 0 };
    let words = [magic, permitted as u32, inheritable as u32, (permitted >> 32) as u32, (inheritable >> 32) as u32];
    Ok(words.iter().flat_map(|w| w.to_le_bytes()).collect())
}

/// Decodes a `security.capability` value to canonical text: names in bit order, then
/// `+` and the flags among `eip` (`cap_net_raw+ep`). `None` when it is not a valid
/// revision 2 value.
pub fn capability_text(value: &[u8]) -> Option<String> {
    if value.len() != 20 {
        return None;
    }
    let w = |i: usize| u32::from_le_bytes([value[4 * i], value[4 * i + 1], value[4 * i + 2], value[4 * i + 3]]);
    if w(0) & VFS_CAP_REVISION_MASK != VFS_CAP_REVISION_2 {
        return None;
    }
    let effective = w(0) & VFS_CAP_FLAGS_EFFECTIVE != 0;
    let permitted = u64::from(w(1)) | (u64::from(w(3)) << 32);
    let inheritable = u64::from(w(2)) | (u64::from(w(4)) << 32);
    // Group capabilities by their flag set so the text reads back to the same value.
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for bit in 0..64 {
        let (p, i) = (permitted >> bit & 1 == 1, inheritable >> bit & 1 == 1);
        if !p && !i {
            continue;
        }
        let flags =
            format!("{}{}{}", if effective { "e" } else { "" }, if i { "i" } else { "" }, if p { "p" } else { "" });
        let name = NAMES.get(bit).map_or_else(|| format!("cap_{bit}"), |n| (*n).to_owned());
        match groups.iter_mut().find(|(f, _)| *f == flags) {
            Some((_, names)) => names.push(name),
            None => groups.push((flags, vec![name])),
        }
    }
    if groups.is_empty() {
        return None;
    }
    Some(groups.iter().map(|(f, names)| format!("{}+{f}", names.join(","))).collect::<Vec<_>>().join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_net_raw_ep_encodes_as_the_kernel_layout() {
        // magic_etc = VFS_CAP_REVISION_2 | EFFECTIVE, permitted[0] = 1 << 13 (CAP_NET_RAW).
        let want = [1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(capability_xattr("cap_net_raw+ep").unwrap(), want);
        assert_eq!(capability_text(&want).unwrap(), "cap_net_raw+ep");
    }

    #[test]
    fn high_capabilities_go_to_the_second_word() {
        let v = capability_xattr("cap_bpf,cap_net_admin=p").unwrap();
        assert_eq!(&v[0..4], &[0, 0, 0, 2]);
        assert_eq!(u32::from_le_bytes(v[4..8].try_into().unwrap()), 1 << 12);
        assert_eq!(u32::from_le_bytes(v[12..16].try_into().unwrap()), 1 << (39 - 32));
        assert_eq!(capability_text(&v).unwrap(), "cap_net_admin,cap_bpf+p");
    }

    #[test]
    fn unknown_names_and_flags_are_refused() {
        assert!(capability_xattr("cap_flying+ep").is_err());
        assert!(capability_xattr("cap_net_raw+x").is_err());
        assert!(capability_xattr("cap_net_raw").is_err());
        assert!(capability_text(&[0; 19]).is_none());
    }
}
