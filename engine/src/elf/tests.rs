use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

/// Builds, byte by byte, an ELF without section headers (so every table is found through
/// the dynamic section and PT_LOAD), in any class and byte order.
fn handmade(class: Class, endian: Endian, machine: u16) -> Vec<u8> {
    let w: usize = if class == Class::Elf64 { 8 } else { 4 };
    let (ehsize, phentsize, symsize) = if w == 8 { (64, 56, 24) } else { (52, 32, 16) };
    let base: u64 = 0x10000;
    let phoff = ehsize;
    let interp_off = phoff + 3 * phentsize;
    let interp = b"/lib/ld-test.so.1\0";
    let strtab_off = interp_off + interp.len();
    let strtab = b"\0libfoo.so.1\0libbar.so.2\0$ORIGIN/../lib:/opt\0foo\0bar\0";
    let sym_off = (strtab_off + strtab.len()).next_multiple_of(8);
    let hash_off = sym_off + 3 * symsize;
    let dyn_off = hash_off + 4 * 5;
    let dyn_entries: [(u64, u64); 9] = [
        (1, 1),
        (1, 13),
        (29, 25),
        (5, base + strtab_off as u64),
        (10, strtab.len() as u64),
        (6, base + sym_off as u64),
        (11, symsize as u64),
        (4, base + hash_off as u64),
        (0, 0),
    ];
    let total = dyn_off + dyn_entries.len() * 2 * w;
    let mut f = vec![0u8; total];
    let put = |f: &mut Vec<u8>, at: usize, v: u64, n: usize| {
        let bytes = v.to_le_bytes();
        for i in 0..n {
            f[at + i] = if endian == Endian::Little { bytes[i] } else { bytes[n - 1 - i] };
        }
    };
    f[..4].copy_from_slice(b"\x7fELF");
    f[4] = if w == 8 { 2 } else { 1 };
    f[5] = if endian == Endian::Little { 1 } else { 2 };
    f[6] = 1;
    put(&mut f, 16, 2, 2);
    put(&mut f, 18, u64::from(machine), 2);
    put(&mut f, 20, 1, 4);
    put(&mut f, 24 + w, phoff as u64, w);
    let rest = 24 + 3 * w;
    put(&mut f, rest + 4, ehsize as u64, 2);
    put(&mut f, rest + 6, phentsize as u64, 2);
    put(&mut f, rest + 8, 3, 2);
    // (type, offset, filesz) of PT_INTERP, PT_LOAD (whole file), PT_DYNAMIC.
    let phdrs = [(3u64, interp_off, interp.len()), (1, 0, total), (2, dyn_off, total - dyn_off)];
    for (i, (kind, off, size)) in phdrs.into_iter().enumerate() {
        let at = phoff + i * phentsize;
        put(&mut f, at, kind, 4);
        let (o_off, o_vaddr, o_filesz) = if w == 8 { (8, 16, 32) } else { (4, 8, 16) };
        put(&mut f, at + o_off, off as u64, w);
        put(&mut f, at + o_vaddr, base + off as u64, w);
        put(&mut f, at + o_filesz, size as u64, w);
    }
    f[interp_off..interp_off + interp.len()].copy_from_slice(interp);
    f[strtab_off..strtab_off + strtab.len()].copy_from_slice(strtab);
    // Symbol 1: `foo`, undefined global function; symbol 2: `bar`, defined weak object.
    for (i, (name, info, shndx)) in [(45u64, 0x12u8, 0u64), (49, 0x21, 7)].into_iter().enumerate() {
        let at = sym_off + (i + 1) * symsize;
        put(&mut f, at, name, 4);
        let (o_info, o_shndx) = if w == 8 { (4, 6) } else { (12, 14) };
        f[at + o_info] = info;
        put(&mut f, at + o_shndx, shndx, 2);
    }
    put(&mut f, hash_off, 1, 4);
    put(&mut f, hash_off + 4, 3, 4);
    for (i, (tag, val)) in dyn_entries.into_iter().enumerate() {
        put(&mut f, dyn_off + i * 2 * w, tag, w);
        put(&mut f, dyn_off + i * 2 * w + w, val, w);
    }
    f
}

#[test]
fn handmade_files_parse_the_same_in_every_class_and_byte_order() {
    for class in [Class::Elf32, Class::Elf64] {
        for endian in [Endian::Little, Endian::Big] {
            let data = handmade(class, endian, 40);
            let elf = Elf::parse(&data, Path::new("handmade")).unwrap();
            assert_eq!((elf.class, elf.endian, elf.machine), (class, endian, Machine::ARM), "{class:?} {endian:?}");
            assert_eq!(elf.file_type, FileType::Executable);
            assert_eq!(elf.interpreter.as_deref(), Some("/lib/ld-test.so.1"));
            assert_eq!(elf.needed, ["libfoo.so.1", "libbar.so.2"]);
            assert_eq!(elf.runpath, ["$ORIGIN/../lib", "/opt"]);
            assert!(elf.rpath.is_empty() && elf.soname.is_none());
            let syms: Vec<_> = elf.symbols.iter().map(|s| (s.name.as_str(), s.defined, s.binding, s.kind)).collect();
            assert_eq!(syms, [("foo", false, Binding::Global, 2), ("bar", true, Binding::Weak, 1)]);
        }
    }
}

#[test]
fn every_truncation_of_a_handmade_file_is_an_error_not_a_panic() {
    for class in [Class::Elf32, Class::Elf64] {
        let data = handmade(class, Endian::Big, 183);
        for len in 0..data.len() {
            // The trailing DT_NULL may be cut without losing anything: only shorter cuts must fail.
            let r = Elf::parse(&data[..len], Path::new("cut"));
            if len < data.len() - 2 * if class == Class::Elf64 { 8 } else { 4 } {
                assert!(r.is_err(), "{class:?} cut at {len} parsed");
            }
        }
    }
}

#[test]
fn a_file_without_the_magic_is_not_elf() {
    let err = Elf::parse(b"#!/bin/sh\n", Path::new("script")).unwrap_err();
    assert!(matches!(err, ElfError::NotElf { .. }), "{err}");
    assert!(err.to_string().contains("script"));
}

/// Flips bytes all over real files (deterministically) and parses each result: any
/// outcome but a panic is fine.
fn corrupt_many(data: &[u8]) {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..3000 {
        let mut bad = data.to_vec();
        for _ in 0..1 + round % 8 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            // Bias towards the headers and tables near the start, where the pointers live.
            let span = if round % 2 == 0 { bad.len().min(4096) } else { bad.len() };
            let at = (seed as usize) % span;
            bad[at] = (seed >> 32) as u8;
        }
        let _ = Elf::parse(&bad, Path::new("corrupt"));
        let cut = (seed as usize >> 8) % bad.len();
        let _ = Elf::parse(&bad[..cut], Path::new("corrupt"));
    }
}

#[test]
fn corrupted_files_give_errors_not_panics() {
    for class in [Class::Elf32, Class::Elf64] {
        corrupt_many(&handmade(class, Endian::Little, 62));
    }
    if let Some(dir) = compiled() {
        corrupt_many(&std::fs::read(dir.path().join("libv2.so")).unwrap());
        corrupt_many(&std::fs::read(dir.path().join("prog")).unwrap());
    }
}

use forge_tests::elf::{arm64_root, versioned_fixture as compiled};

#[test]
fn a_versioned_library_built_by_cc_reads_back_exactly() {
    let Some(dir) = compiled() else { return };
    let lib = Elf::open(&dir.path().join("libv2.so")).unwrap();
    assert_eq!(lib.soname.as_deref(), Some("libv.so.1"));
    assert_eq!(lib.file_type, FileType::Shared);
    assert!(lib.interpreter.is_none());
    let defs: Vec<_> = lib.version_defs.iter().map(|d| (d.name.as_str(), d.base)).collect();
    assert_eq!(defs, [("libv.so.1", true), ("V0", false), ("V1", false), ("V2", false)]);
    let mut exported: Vec<_> = lib
        .symbols
        .iter()
        .filter(|s| s.defined && s.version.is_some())
        .map(|s| {
            let v = s.version.as_ref().unwrap();
            format!("{}{}{}", s.name, if v.hidden { "@" } else { "@@" }, v.name)
        })
        .collect();
    exported.sort();
    // ld also exports each version name as an absolute symbol of that version.
    assert_eq!(exported, ["V0@@V0", "V1@@V1", "V2@@V2", "data_v@@V1", "new_fn@@V2", "old_fn@@V1", "old_fn@V0"]);
}

#[test]
fn a_program_built_by_cc_names_its_needs_with_versions() {
    let Some(dir) = compiled() else { return };
    let prog = Elf::open(&dir.path().join("prog")).unwrap();
    assert_eq!(prog.machine.name(), std::env::consts::ARCH);
    assert!(prog.interpreter.as_deref().is_some_and(|i| i.starts_with('/')));
    assert!(prog.needed.contains(&"libv.so.1".to_owned()) && prog.needed.contains(&"libc.so.6".to_owned()));
    assert_eq!(prog.runpath, ["$ORIGIN/lib"]);
    let need = |name: &str| prog.symbols.iter().find(|s| s.name == name).unwrap();
    let new_fn = need("new_fn");
    assert!(!new_fn.defined);
    let v = new_fn.version.as_ref().unwrap();
    assert_eq!((v.name.as_str(), v.file.as_deref()), ("V2", Some("libv.so.1")));
    assert_eq!(need("maybe").binding, Binding::Weak);
    let libv = prog.version_needs.iter().find(|n| n.file == "libv.so.1").unwrap();
    let mut names: Vec<_> = libv.versions.iter().map(|v| v.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["V1", "V2"]);
}

/// What `readelf --dyn-syms -W` says: (undefined, `name@VER`/`name@@VER`/`name`) per symbol.
fn readelf_symbols(path: &Path) -> Vec<(bool, String)> {
    let out = Command::new("readelf").args(["--dyn-syms", "-W"]).arg(path).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter(|l| l.trim_start().split(':').next().is_some_and(|n| n.parse::<u32>().is_ok_and(|n| n > 0)))
        .map(|l| {
            let cols: Vec<_> = l.split_whitespace().collect();
            // Section symbols have no name; readelf shows the section's instead.
            let name = if cols[3] == "SECTION" { "" } else { cols.get(7).copied().unwrap_or("") };
            (cols[6] == "UND", name.to_owned())
        })
        .collect()
}

fn our_symbols(elf: &Elf) -> Vec<(bool, String)> {
    elf.symbols
        .iter()
        .map(|s| {
            let name = match &s.version {
                None => s.name.clone(),
                // readelf prints the symbol naming a version definition without its version.
                Some(v) if s.defined && v.name == s.name => s.name.clone(),
                Some(v) if v.file.is_some() => format!("{}@{}", s.name, v.name),
                Some(v) => format!("{}{}{}", s.name, if v.hidden { "@" } else { "@@" }, v.name),
            };
            (!s.defined, name)
        })
        .collect()
}

/// Real files from the host and, when present, the arm64 libc6 unpacked by `.ci/setup.d/abi.sh`.
fn real_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["/bin/ls", "/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libm.so.6"]
        .iter()
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .collect();
    if let Some(root) = arm64_root() {
        files.push(root.join("lib/aarch64-linux-gnu/libc.so.6"));
        files.push(root.join("usr/bin/getent"));
    }
    files
}

#[test]
fn dynamic_symbols_and_versions_agree_with_readelf_on_real_files() {
    if !forge_tests::have_tool("readelf") {
        return;
    }
    let files = real_files();
    assert!(!files.is_empty(), "no real ELF file found on this host");
    for path in files {
        let elf = Elf::open(&path).unwrap();
        let ours = our_symbols(&elf);
        let theirs = readelf_symbols(&path);
        assert_eq!(ours.len(), theirs.len(), "{}", path.display());
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            assert_eq!(a, b, "{} symbol {}", path.display(), i + 1);
        }
    }
}

#[test]
fn needed_soname_and_interpreter_agree_with_readelf_on_real_files() {
    if !forge_tests::have_tool("readelf") {
        return;
    }
    for path in real_files() {
        let elf = Elf::open(&path).unwrap();
        let out = Command::new("readelf").args(["-d", "-l", "-W"]).arg(&path).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let bracketed = |tag: &str| -> Vec<String> {
            text.lines()
                .filter(|l| l.contains(tag))
                .filter_map(|l| Some(l.split_once('[')?.1.split_once(']')?.0.to_owned()))
                .collect()
        };
        assert_eq!(elf.needed, bracketed("(NEEDED)"), "{}", path.display());
        assert_eq!(elf.soname.into_iter().collect::<Vec<_>>(), bracketed("(SONAME)"), "{}", path.display());
        let interp = bracketed("[Requesting program interpreter:");
        let interp: Vec<_> = interp.iter().map(|s| s.trim_start_matches("Requesting program interpreter: ")).collect();
        assert_eq!(elf.interpreter.as_deref().into_iter().collect::<Vec<_>>(), interp, "{}", path.display());
    }
}

#[test]
fn offsets_near_the_top_of_the_address_space_are_errors_not_overflows() {
    let data = handmade(Class::Elf64, Endian::Little, 62);
    // e_shoff = u64::MAX - 8 with e_shnum = 0: the extended section count lies out of range.
    let mut bad = data.clone();
    bad[40..48].copy_from_slice(&(u64::MAX - 8).to_le_bytes());
    assert!(Elf::parse(&bad, Path::new("x")).is_err());
    // PT_LOAD (the second program header) at offset u64::MAX - 8: every mapped table is out of range.
    let mut bad = data.clone();
    bad[64 + 56 + 8..64 + 56 + 16].copy_from_slice(&(u64::MAX - 8).to_le_bytes());
    assert!(Elf::parse(&bad, Path::new("x")).is_err());
    // e_phoff near the top: the program headers cannot be read.
    let mut bad = data;
    bad[32..40].copy_from_slice(&(u64::MAX - 2).to_le_bytes());
    assert!(Elf::parse(&bad, Path::new("x")).is_err());
}

#[test]
fn arm_hard_float_and_soft_float_objects_are_not_the_same_abi() {
    let base = Elf::parse(&handmade(Class::Elf32, Endian::Little, 40), Path::new("x")).unwrap();
    let with = |flags| Elf { flags, ..base.clone() };
    assert!(with(0x0500_0400).same_abi(&with(0x0500_0400)));
    assert!(!with(0x0500_0400).same_abi(&with(0x0500_0200)));
    assert!(with(0).same_abi(&with(0x0500_0200)));
    let x86 = Elf { machine: Machine::X86_64, ..base.clone() };
    assert!(!x86.same_abi(&base));
}
