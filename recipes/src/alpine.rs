//! `alpine-system`: the AGNOS image on Alpine, composed from store paths.
//!
//! Inputs, all pinned: the Alpine minirootfs of the release (its sha256 from
//! Alpine's published checksums) and comma's own files from agnos-builder at a
//! fixed revision (a git fixed-output, NAR-hashed). The `rootfs` builtin stacks
//! them, converts comma's systemd units to OpenRC services, adds the `magic`
//! service and the system's users, hostname and metadata files; the `image`
//! builtin writes ext4 (4500M) and the Android sparse image with its manifest.
//!
//! What is not in the image yet (see docs/alpine.md): the Alpine package world
//! (needs `forge lock alpine-system` against Alpine's live indexes and the apk
//! installer), packages forge compiles (ModemManager, qtwayland, glibc runtime),
//! and magic.py's Python environment.
//!
//! The recipe takes a [`Release`], so tests run the same code on a fixture release.

use forge_engine::dsl::{Forge, Image, Input};
use forge_engine::rootfs::Op;
use forge_engine::Result;

/// Everything that pins one release of the system.
#[derive(Clone, Debug)]
pub struct Release {
    /// `/VERSION` of the image.
    pub version: String,
    /// `x86_64` (for testing on a PC) or `aarch64` (the device).
    pub arch: String,
    /// Where the Alpine minirootfs tarball is downloaded from (mirrors first).
    pub minirootfs_urls: Vec<String>,
    /// sha256 of the minirootfs tarball, in hex.
    pub minirootfs_sha256: String,
    /// The agnos-builder git repository.
    pub agnos_url: String,
    /// The agnos-builder commit the image takes its files from.
    pub agnos_rev: String,
    /// NAR hash (`sha256:<base32>`) of that checkout.
    pub agnos_nar_hash: String,
    /// The image's ext4 size (`4500M` on the device).
    pub image_size: String,
    /// Seconds since the epoch: every mtime, and the date in `/BUILD`.
    pub source_date_epoch: i64,
}

/// AGNOS on Alpine 3.20.3 for `arch`, with the pins of ../shared/fixtures/alpine/README.md
/// and the agnos-builder revision of the migration plan.
pub fn release(arch: &str) -> Release {
    let sha256 = match arch {
        "aarch64" => "041fa34a81788242df9e78fa69b97ab45b8ec47ddbf88864755610414a7bf3de",
        _ => "d4e6fd67dcf75e40c451560ac7265166c2b72a0f38ddc9aae756a7de3d1efa0c",
    };
    Release {
        version: "12.0-alpine".to_owned(),
        arch: arch.to_owned(),
        minirootfs_urls: vec![format!(
            "https://dl-cdn.alpinelinux.org/alpine/v3.20/releases/{arch}/alpine-minirootfs-3.20.3-{arch}.tar.gz"
        )],
        minirootfs_sha256: sha256.to_owned(),
        agnos_url: "https://github.com/commaai/agnos-builder".to_owned(),
        agnos_rev: "2320521a0fec4180f35c3b7c22d6ebc4c152223a".to_owned(),
        agnos_nar_hash: "sha256:0dx8yxadad9930ljkz1sz2ifccakdn4vj38ay6x59f2a0a1mq8f7".to_owned(),
        image_size: "4500M".to_owned(),
        source_date_epoch: 1_727_740_800, // 2024-10-01, near Alpine 3.20.3's release
    }
}

/// The system image of `release`.
pub fn system(f: &mut Forge, release: &Release) -> Result<Image> {
    let urls: Vec<&str> = release.minirootfs_urls.iter().map(String::as_str).collect();
    let minirootfs = f.fetch(
        &format!("alpine-minirootfs-{}.tar.gz", release.arch),
        &urls,
        &format!("sha256:{}", release.minirootfs_sha256),
    )?;
    let agnos = f.git(
        "agnos-builder-userspace",
        &release.agnos_url,
        &release.agnos_rev,
        &release.agnos_nar_hash,
        &["userspace/files", "userspace/usr/comma"],
    )?;
    let mut ops = vec![
        Op::Copy { src: agnos.path().clone(), from: "userspace/usr/comma".into(), to: "/usr/comma".into() },
        Op::SystemdUnits { src: agnos.path().clone(), dir: "userspace/files".into(), skip: vec![] },
        Op::MagicService,
    ];
    ops.extend(system_files(release));
    let args = serde_json::json!({
        "base": minirootfs.path().to_string(),
        "epoch": release.source_date_epoch,
        "ops": ops,
    });
    let rootfs = f.builtin(&format!("agnos-rootfs-{}", release.arch), "rootfs", 1, args, &[&minirootfs, &agnos])?;
    let image_args = serde_json::json!({
        "rootfs": rootfs.path().to_string(),
        "size": release.image_size,
        "label": "system",
        "name": "system",
    });
    Ok(f.builtin(&format!("agnos-system-{}", release.arch), "image", 1, image_args, &[&rootfs])?.into_image())
}

/// Users, hostname, hosts, capabilities and the metadata files (inventory, 6.1).
fn system_files(release: &Release) -> Vec<Op> {
    let write = |path: &str, content: &str, mode: u32| Op::Write { path: path.into(), content: content.into(), mode };
    let append = |path: &str, content: &str| Op::Append { path: path.into(), content: content.into() };
    vec![
        // comma: uid/gid 1000, its own groups at fixed ids so images are stable.
        append("/etc/group", "gpio:x:1001:comma\ngpu:x:1002:comma\ncomma:x:1000:\n"),
        append("/etc/passwd", "comma:x:1000:1000:comma:/home/comma:/bin/ash\n"),
        append("/etc/shadow", "comma:!::0:::::\n"),
        Op::Mkdir { path: "/home/comma".into(), mode: 0o755 },
        Op::Chown { path: "/home/comma".into(), uid: 1000, gid: 1000 },
        write("/etc/sudoers.d/comma", "comma ALL=(ALL) NOPASSWD: ALL\n", 0o440),
        write("/etc/hostname", "comma\n", 0o644),
        write("/etc/hosts", "127.0.0.1 localhost.localdomain localhost\n127.0.0.1 comma\n", 0o644),
        Op::Mkdir { path: "/data".into(), mode: 0o755 },
        Op::Mkdir { path: "/var/log".into(), mode: 0o755 },
        Op::Setcap { path: "/bin/busybox".into(), caps: "cap_net_raw+ep".into() },
        write("/VERSION", &format!("{}\n", release.version), 0o644),
        write("/BUILD", &format!("{}\n{}\n", release.agnos_rev, iso_date(release.source_date_epoch)), 0o644),
    ]
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix time, UTC (the old build's /BUILD format).
fn iso_date(t: i64) -> String {
    forge_engine::sbom::rfc3339(t).trim_end_matches('Z').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_date_matches_known_instants() {
        assert_eq!(iso_date(0), "1970-01-01T00:00:00");
        assert_eq!(iso_date(1_727_740_800), "2024-10-01T00:00:00");
        assert_eq!(iso_date(951_782_400 + 3661), "2000-02-29T01:01:01");
    }

    #[test]
    fn the_real_release_pins_the_minirootfs_and_agnos_builder() {
        let mut f = Forge::new();
        system(&mut f, &release("aarch64")).unwrap();
        let json: Vec<String> = f.nodes().iter().map(|n| n.drv.canonical_json()).collect();
        let all = json.join("\n");
        assert!(
            all.contains("041fa34a81788242df9e78fa69b97ab45b8ec47ddbf88864755610414a7bf3de")
                || all.contains("alpine-minirootfs-aarch64")
        );
        assert!(all.contains("2320521a0fec4180f35c3b7c22d6ebc4c152223a"));
        assert!(all.contains("0dx8yxadad9930ljkz1sz2ifccakdn4vj38ay6x59f2a0a1mq8f7"));
        assert!(all.contains("4500M"));
    }
}
