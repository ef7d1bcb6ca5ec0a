//! glibc for the vendor blobs: the Qualcomm GPU, DSP and modem libraries and the raylib
//! wheel are linked against glibc (inventory, section 4) while the system is musl.
//!
//! glibc 2.36 is compiled from source by Debian's cross gcc for aarch64-linux-gnu into
//! its own prefix, [`PREFIX`] (`/usr/glibc`: libraries in `/usr/glibc/lib`, its
//! `ld.so.conf` and `ld.so.cache` in `/usr/glibc/etc`), with the program interpreter at
//! the path the blobs name, [`LOADER`] (`/lib/ld-linux-aarch64.so.1`, and
//! `/lib64/ld-linux-aarch64.so.1` linking to it). Nothing else of glibc lands in `/lib`
//! or `/usr/lib`, so glibc programs and musl programs (whose loader is
//! `/lib/ld-musl-aarch64.so.1`, searching `/lib` and `/usr/lib`) share a root without
//! sharing a library. docs/glibc.md explains the layout.
//!
//! The toolchain is a store path too: the bootstrap packages plus the pinned Debian
//! packages of `data/debian-bookworm-aarch64-cross.lock` (the cross gcc, binutils,
//! kernel headers, and the tools glibc's build needs), merged like
//! [`bootstrap::toolchain`].
//!
//! The demo recipes ([`demo_programs`], [`demo_root`]) are what the tests run: programs
//! compiled against this glibc, and a root filesystem of a musl base plus this layer.

use forge_engine::apk::make::ApkSpec;
use forge_engine::dsl::{ApkFile, Forge, Input, Package, RunStep, Source};
use forge_engine::Result;

use crate::bootstrap::{self, DebPin};

/// Where glibc lives in the root filesystem (everything but its loader).
pub const PREFIX: &str = "/usr/glibc";
/// The program interpreter the blobs name (PT_INTERP), where glibc's loader is installed.
pub const LOADER: &str = "/lib/ld-linux-aarch64.so.1";
/// The other interpreter path some blobs name (inventory 4.1): a link to [`LOADER`].
pub const LOADER_LIB64: &str = "/lib64/ld-linux-aarch64.so.1";

const CROSS_LOCK: &str = include_str!("../data/debian-bookworm-aarch64-cross.lock");

/// Debian's glibc 2.36 `.orig` tarball: upstream's release without `manual/` (the manual
/// is GFDL with invariant sections, which Debian does not ship). Not upstream's
/// `glibc-2.36.tar.xz` (sha256 1c959fea...fcfe75), so it is pinned as Debian's file under
/// Debian's name.
const GLIBC_ORIG: (&str, &str, &str) = (
    "glibc_2.36.orig.tar.xz",
    "mirror://debian/pool/main/g/glibc/glibc_2.36.orig.tar.xz",
    "sha256:a543c02070d46ccaf866957efd13f10c924daa74c86a90a0254db09a92a708ee",
);
/// Debian's packaging of 2.36-9+deb12u14, for two of its patches: `git-updates.diff`, the
/// commits of upstream's release/2.36/master branch since the release (security and bug
/// fixes, e.g. CVE-2023-4911 in the loader), and `local-remove-manual.diff`, which lets
/// the tree build without `manual/`. Debian's other patches are not applied.
const GLIBC_DEBIAN: (&str, &str, &str) = (
    "glibc_2.36-9+deb12u14.debian.tar.xz",
    "mirror://debian/pool/main/g/glibc/glibc_2.36-9+deb12u14.debian.tar.xz",
    "sha256:cf4ac9cd98185452cae3ef34e2e4ee12753e3d93fd0c62c61396d4a47eec902f",
);
/// glibc 2.36's release, 2022-08-02.
const GLIBC_EPOCH: u64 = 1_659_398_400;

/// Busybox applets the cross lock replaces with the GNU programs glibc's scripts expect.
const GNU_TOOLS: &[&str] = &["sed", "grep", "egrep", "fgrep"];

/// The pins of the cross lock (the packages beyond the bootstrap toolchain).
pub fn cross_pins() -> Vec<DebPin> {
    bootstrap::parse_lock(CROSS_LOCK).expect("the bundled cross lock parses (checked by a test)")
}

/// The aarch64-linux-gnu cross toolchain layer: the bootstrap toolchain's packages and
/// the cross lock's, merged, with `aarch64-linux-gnu-gcc` and `python3` named.
pub fn aarch64_gnu_toolchain(f: &mut Forge) -> Result<Package> {
    f.memo("aarch64-gnu-toolchain", |f| {
        let mut layers = bootstrap::deb_layers(f, &bootstrap::toolchain_pins())?;
        layers.extend(bootstrap::deb_layers(f, &cross_pins())?);
        let mut links = bootstrap::toolchain_links(GNU_TOOLS);
        for (tool, target) in [
            ("aarch64-linux-gnu-gcc", "aarch64-linux-gnu-gcc-12"),
            ("aarch64-linux-gnu-cpp", "aarch64-linux-gnu-cpp-12"),
            ("python3", "python3.11"),
        ] {
            links.push((format!("usr/bin/{tool}"), target.to_owned()));
        }
        let links: Vec<(&str, &str)> = links.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let inputs: Vec<&dyn Input> = layers.iter().map(|l| l as &dyn Input).collect();
        f.merge("aarch64-linux-gnu-toolchain-gcc-12", &inputs, &links)
    })
}

/// glibc 2.36 for aarch64 in [`PREFIX`], its loader at [`LOADER`].
pub fn glibc(f: &mut Forge) -> Result<Package> {
    crate::cross::on_build_machine(f, "glibc", |f| {
        let toolchain = aarch64_gnu_toolchain(f)?;
        let (name, url, hash) = GLIBC_ORIG;
        let src = f.fetch(name, &[url], hash)?;
        let (name, url, hash) = GLIBC_DEBIAN;
        let debian = f.fetch(name, &[url], hash)?;
        let debian = f.unpack("glibc-2.36-9+deb12u14-debian", &debian, 0)?;
        f.package("glibc", "2.36")
            .source(&src)
            .input(&debian)
            .build_dep(&toolchain)
            // glibc's generator scripts are Python: no hash randomisation in what they write.
            .env("PYTHONHASHSEED", "0")
            .phase("configure", &configure_script(&debian))
            .phase("build", "make -j\"$FORGE_BUILD_CORES\"")
            .phase("install", INSTALL)
            .source_date_epoch(GLIBC_EPOCH)
            .finish()
    })
}

/// The C++ runtime of glibc programs: `libstdc++.so.6` and `libgcc_s.so.1` in
/// [`PREFIX`]`/lib`, where glibc's loader finds them and musl's never looks. The C++
/// blobs (libcutils, libutils, adbd, the Adreno stack) need GLIBCXX and GCC_ symbol
/// versions that no musl library provides. These are the aarch64 libraries of Debian
/// 12's gcc 12.2.0 (`libstdc++6-arm64-cross`, `libgcc-s1-arm64-cross`, pinned in the
/// cross lock), built against Debian's glibc 2.36, the version of [`glibc`]; they are
/// copied, not compiled here (docs/glibc.md).
pub fn cxx_runtime(f: &mut Forge) -> Result<Package> {
    crate::cross::on_build_machine(f, "glibc-cxx-runtime", |f| {
        let toolchain = aarch64_gnu_toolchain(f)?;
        f.run(RunStep {
            name: "glibc-cxx-runtime-12.2.0",
            sysroot: vec![&toolchain],
            inputs: vec![],
            script: &cxx_runtime_script(),
            env: Default::default(),
        })
    })
}

/// The files of [`cxx_runtime`], as `cp -P` copies them (the soname link and its target).
const CXX_RUNTIME_FILES: &[&str] = &["libstdc++.so.6", "libstdc++.so.6.0.30", "libgcc_s.so.1"];

fn cxx_runtime_script() -> String {
    format!(
        "mkdir -p \"$out{PREFIX}/lib\"\ncd /usr/aarch64-linux-gnu/lib\ncp -P {} \"$out{PREFIX}/lib/\"\n",
        CXX_RUNTIME_FILES.join(" ")
    )
}

/// configure's flags: cross from x86_64, into the prefix; no profiling libraries, no
/// nscd, no SELinux or libgd (not in the toolchain); `-Werror` off, as gcc releases
/// newer than the glibc release add warnings.
pub const CONFIGURE_FLAGS: &[&str] = &[
    "--host=aarch64-linux-gnu",
    "--build=x86_64-linux-gnu",
    "--prefix=/usr/glibc",
    "--with-headers=/usr/aarch64-linux-gnu/include",
    "--enable-stack-protector=strong",
    "--disable-werror",
    "--disable-profile",
    "--disable-build-nscd",
    "--disable-nscd",
    "--without-selinux",
    "--without-gd",
    "CC=aarch64-linux-gnu-gcc",
    "CXX=false",
];

fn configure_script(debian: &Source) -> String {
    format!(
        "# GNU patch, not busybox's: git diffs delete files, busybox would leave them empty.\n\
         /usr/bin/patch -p1 -s -i {debian}/debian/patches/git-updates.diff\n\
         # Debian's tarball has no manual/ (GFDL): its patch drops the references to it.\n\
         /usr/bin/patch -p1 -s -i {debian}/debian/patches/all/local-remove-manual.diff\n\
         mkdir /build/obj\n\
         cd /build/obj\n\
         # The loader where the blobs look for it; everything else under the prefix.\n\
         echo 'rtlddir=/lib' > configparms\n\
         /build/src/configure {flags}",
        debian = debian.path(),
        flags = CONFIGURE_FLAGS.join(" "),
    )
}

/// Installs, strips debug sections (symbol tables stay), links the `/lib64` interpreter
/// path and writes the prefix's `ld.so.conf`, which includes `ld.so.conf.d/*.conf` so
/// that layers of blobs can add their directories (ldconfig must then write the cache).
const INSTALL: &str = r#"make install DESTDIR="$out"
is_elf() { [ "$(od -An -tx1 -N4 "$1" | tr -d ' \n')" = 7f454c46 ]; }
find "$out" -type f | sort | while read -r f; do
  if is_elf "$f"; then aarch64-linux-gnu-strip --strip-debug "$f"; fi
done
mkdir -p "$out/lib64" "$out/usr/glibc/etc/ld.so.conf.d"
ln -s /lib/ld-linux-aarch64.so.1 "$out/lib64/ld-linux-aarch64.so.1"
echo 'include /usr/glibc/etc/ld.so.conf.d/*.conf' > "$out/usr/glibc/etc/ld.so.conf"
"#;

/// C sources of the demo programs.
const GLIBC_HELLO: &str = r#"#include <stdio.h>
#include <sys/random.h>
#include <gnu/libc-version.h>

/* getrandom is GLIBC_2.25: a versioned need newer than aarch64's GLIBC_2.17 baseline. */
int main(void) {
    unsigned char buf[16];
    ssize_t n = getrandom(buf, sizeof buf, 0);
    printf("hello from glibc %s: getrandom gave %zd bytes\n", gnu_get_libc_version(), n);
    return n == (ssize_t) sizeof buf ? 0 : 1;
}
"#;

const NEEDS_NEWER: &str = r#"#include <stdio.h>
#include <stddef.h>

size_t strlcpy(char *dst, const char *src, size_t size); /* glibc 2.38 and later */

int main(void) {
    char buf[8];
    printf("%zu\n", strlcpy(buf, "too new", sizeof buf));
    return 0;
}
"#;

/// A stand-in for a newer glibc at link time: a `libc.so.6` defining what the program and
/// glibc's start files use at the versions glibc gives them, and `strlcpy@GLIBC_2.38`.
/// (Beside the real `libc.so.6` it would not do: ld keeps one library per soname.)
const NEWER_STUB: &str = "int printf(const char *f, ...) { return 0; }\n\
void abort(void) { for (;;) ; }\n\
int __libc_start_main(void) { return 0; }\n\
unsigned long strlcpy(char *d, const char *s, unsigned long n) { return n; }\n";
const NEWER_STUB_MAP: &str = "GLIBC_2.17 { global: printf; abort; local: *; };\n\
GLIBC_2.34 { global: __libc_start_main; } GLIBC_2.17;\n\
GLIBC_2.38 { global: strlcpy; } GLIBC_2.34;\n";

const MUSL_HELLO: &str = r#"#include <stdio.h>

int main(void) {
    printf("hello from musl\n");
    return 0;
}
"#;

/// musl 1.2.3 for aarch64, built by the same cross gcc: the musl side of the demo root.
pub fn musl_aarch64(f: &mut Forge) -> Result<Package> {
    f.memo("musl-aarch64", |f| {
        let toolchain = aarch64_gnu_toolchain(f)?;
        let src = crate::examples::musl_source(f)?;
        f.package("musl-aarch64", "1.2.3")
            .source(&src)
            .build_dep(&toolchain)
            .phase(
                "configure",
                "./configure --target=aarch64-linux-musl --prefix=/usr --syslibdir=/lib \
                 --disable-wrapper CROSS_COMPILE=aarch64-linux-gnu- CC=aarch64-linux-gnu-gcc",
            )
            .autotools(&[])
            .source_date_epoch(1_649_721_600) // musl 1.2.3's release, 2022-04-07
            .finish()
    })
}

/// The demo programs in `/usr/bin`: `glibc-hello` (this glibc, a GLIBC_2.25 need),
/// `needs-glibc-2.38` (linked against a stub that stands for a newer glibc, so its need
/// cannot be met here) and `musl-hello` (musl).
pub fn demo_programs(f: &mut Forge) -> Result<Package> {
    f.memo("glibc-demo-programs", |f| {
        let toolchain = aarch64_gnu_toolchain(f)?;
        let glibc = glibc(f)?;
        let musl = musl_aarch64(f)?;
        let sources = [
            ("glibc-hello.c", GLIBC_HELLO),
            ("needs-newer.c", NEEDS_NEWER),
            ("newer-stub.c", NEWER_STUB),
            ("newer-stub.map", NEWER_STUB_MAP),
            ("musl-hello.c", MUSL_HELLO),
        ];
        let mut texts = Vec::new();
        for (name, content) in sources {
            texts.push(f.text(name, content)?);
        }
        let script = demo_script(&texts, &musl);
        let mut inputs: Vec<&dyn Input> = texts.iter().map(|t| t as &dyn Input).collect();
        inputs.push(&musl);
        f.run(forge_engine::dsl::RunStep {
            name: "glibc-demo-programs",
            // glibc's layer in the root: its linker script names /usr/glibc/lib/libc.so.6.
            sysroot: vec![&toolchain, &glibc],
            inputs,
            script: &script,
            env: Default::default(),
        })
    })
}

fn demo_script(texts: &[Source], musl: &Package) -> String {
    let p = |i: usize| texts[i].path().to_string();
    format!(
        r#"mkdir -p "$out/usr/bin" /build/stub
GCC="aarch64-linux-gnu-gcc -O2 -isystem /usr/glibc/include -B/usr/glibc/lib/ -L/usr/glibc/lib -Wl,-rpath-link,/usr/glibc/lib -Wl,--dynamic-linker=/lib/ld-linux-aarch64.so.1"
$GCC -o "$out/usr/bin/glibc-hello" {hello}
aarch64-linux-gnu-gcc -shared -nostdlib -fPIC -fno-builtin -o /build/stub/libc.so.6 {stub} -Wl,-soname,libc.so.6 -Wl,--version-script={map}
$GCC -nodefaultlibs -o "$out/usr/bin/needs-glibc-2.38" {newer} /build/stub/libc.so.6 -lgcc
M={musl}/usr
aarch64-linux-gnu-gcc -O2 -nostdinc -isystem "$M/include" -isystem "$(aarch64-linux-gnu-gcc -print-file-name=include)" \
  -nostartfiles -nodefaultlibs -Wl,--dynamic-linker=/lib/ld-musl-aarch64.so.1 -o "$out/usr/bin/musl-hello" \
  "$M/lib/crt1.o" "$M/lib/crti.o" {musl_hello} -L"$M/lib" -lc -lgcc "$M/lib/crtn.o"
"#,
        hello = p(0),
        newer = p(1),
        stub = p(2),
        map = p(3),
        musl_hello = p(4),
        musl = musl.path(),
    )
}

/// The glibc layer as an Alpine package, `glibc-runtime` for aarch64 (sign it with
/// `forge build glibc-apk --apk-key KEY.rsa`). No automatic `so:` entries: its
/// libraries live outside musl's search path, so they provide nothing to musl
/// programs, and they need only each other. It conflicts with gcompat, which owns the
/// same loader path.
pub fn glibc_apk(f: &mut Forge) -> Result<ApkFile> {
    f.memo("glibc-apk", |f| {
        let tree = glibc(f)?;
        f.apk_package(&tree, &glibc_apk_spec())
    })
}

/// The C++ runtime layer as the aarch64 apk `glibc-libstdc++`, which needs
/// `glibc-runtime` (sign it with `forge build glibc-cxx-apk --apk-key KEY.rsa`). No
/// automatic `so:` entries, for the reason [`glibc_apk`] gives.
pub fn cxx_runtime_apk(f: &mut Forge) -> Result<ApkFile> {
    f.memo("glibc-cxx-apk", |f| {
        let tree = cxx_runtime(f)?;
        f.apk_package(&tree, &cxx_runtime_apk_spec())
    })
}

fn cxx_runtime_apk_spec() -> ApkSpec {
    ApkSpec {
        description: "libstdc++ and libgcc_s of gcc 12.2.0 for glibc programs, in /usr/glibc/lib".into(),
        url: "https://gcc.gnu.org/".into(),
        license: "GPL-3.0-or-later WITH GCC-exception-3.1".into(),
        depends: vec![glibc_apk_spec().name],
        auto_deps: false,
        ..crate::apk_spec("glibc-libstdc++", "12.2.0-r0", "aarch64", GLIBC_EPOCH)
    }
}

fn glibc_apk_spec() -> ApkSpec {
    ApkSpec {
        description: "glibc 2.36 in /usr/glibc, its loader at /lib/ld-linux-aarch64.so.1".into(),
        url: "https://www.gnu.org/software/libc/".into(),
        license: "LGPL-2.1-or-later".into(),
        depends: vec!["!gcompat".into()],
        auto_deps: false,
        ..crate::apk_spec("glibc-runtime", "2.36-r0", "aarch64", GLIBC_EPOCH)
    }
}

/// A root filesystem of both worlds: musl (its loader and libc in `/lib`, `/usr/lib`),
/// the glibc layer with its C++ runtime, and the demo programs.
pub fn demo_root(f: &mut Forge) -> Result<Package> {
    f.memo("glibc-demo-root", |f| {
        let musl = musl_aarch64(f)?;
        let glibc = glibc(f)?;
        let cxx = cxx_runtime(f)?;
        let programs = demo_programs(f)?;
        f.merge("glibc-demo-root", &[&musl, &glibc, &cxx, &programs], &[])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use forge_engine::drv::Builder;

    #[test]
    fn the_glibc_apk_packages_the_layer_for_aarch64_and_conflicts_with_gcompat() {
        let spec = glibc_apk_spec();
        spec.validate().unwrap();
        assert_eq!((spec.name.as_str(), spec.arch.as_str()), ("glibc-runtime", "aarch64"));
        assert_eq!(spec.depends, ["!gcompat"]);
        assert!(!spec.auto_deps, "its libraries are outside musl's search path");
        let mut f = Forge::new();
        let apk = glibc_apk(&mut f).unwrap();
        let layer = glibc(&mut f).unwrap();
        let node = f.nodes().iter().find(|n| n.outputs["out"] == *apk.path()).unwrap();
        assert!(node.drv.inputs.contains(layer.path()), "the apk packs the glibc layer");
    }

    #[test]
    fn the_cxx_runtime_apk_packs_its_layer_and_needs_the_glibc_runtime() {
        let spec = cxx_runtime_apk_spec();
        spec.validate().unwrap();
        assert_eq!(spec.file_name(), "glibc-libstdc++-12.2.0-r0.apk");
        assert_eq!((spec.arch.as_str(), spec.depends.as_slice()), ("aarch64", &["glibc-runtime".to_owned()][..]));
        assert_eq!(spec.depends[0], glibc_apk_spec().name, "the glibc apk's own name");
        let mut f = Forge::new();
        let apk = cxx_runtime_apk(&mut f).unwrap();
        let layer = cxx_runtime(&mut f).unwrap();
        assert!(f.node(apk.node()).drv.inputs.contains(layer.path()));
    }

    #[test]
    fn the_cxx_runtime_copies_debians_aarch64_libstdcxx_and_libgcc_s_into_the_prefix() {
        let mut f = Forge::new();
        let cxx = cxx_runtime(&mut f).unwrap();
        let toolchain = aarch64_gnu_toolchain(&mut f).unwrap();
        let Builder::Run { script, sysroot, .. } = &f.node(cxx.node()).drv.builder else { panic!("not a run step") };
        assert_eq!(sysroot, &[toolchain.path().clone()]);
        assert!(script.contains("mkdir -p \"$out/usr/glibc/lib\""), "{script}");
        assert!(script.contains("cp -P libstdc++.so.6 libstdc++.so.6.0.30 libgcc_s.so.1 \"$out/usr/glibc/lib/\""));
        for package in ["libstdc++6-arm64-cross", "libgcc-s1-arm64-cross"] {
            assert!(cross_pins().iter().any(|p| p.package == package && p.version == "12.2.0-14cross1"), "{package}");
        }
    }

    #[test]
    fn the_cross_lock_parses_and_pins_the_cross_compiler_and_glibcs_build_tools() {
        let pins = cross_pins();
        for needed in [
            "gcc-12-aarch64-linux-gnu",
            "binutils-aarch64-linux-gnu",
            "linux-libc-dev-arm64-cross",
            "libgcc-12-dev-arm64-cross",
            "gawk",
            "bison",
            "python3.11-minimal",
            "patch",
        ] {
            assert!(pins.iter().any(|p| p.package == needed), "{needed} missing from the cross lock");
        }
        assert!(pins.iter().all(|p| p.sha256.len() == 64 && p.pool_path.starts_with("pool/")));
    }

    #[test]
    fn the_cross_lock_repeats_no_bootstrap_package() {
        let boot = bootstrap::toolchain_pins();
        let repeated: Vec<_> =
            cross_pins().into_iter().filter(|c| boot.iter().any(|b| b.package == c.package)).collect();
        assert!(repeated.is_empty(), "already in the bootstrap lock: {repeated:?}");
    }

    #[test]
    fn the_cross_toolchain_merges_both_locks_and_keeps_gnu_sed() {
        let mut f = Forge::new();
        let tc = aarch64_gnu_toolchain(&mut f).unwrap();
        let pins = bootstrap::toolchain_pins().len() + cross_pins().len();
        assert_eq!(f.nodes().len(), 2 * pins + 1);
        let Builder::Builtin { args, .. } = &f.node(tc.node()).drv.builder else { panic!("not a merge") };
        let links = args["symlinks"].as_object().unwrap();
        assert_eq!(links["usr/bin/aarch64-linux-gnu-gcc"], "aarch64-linux-gnu-gcc-12");
        assert!(!links.contains_key("bin/sed"), "busybox sed would shadow GNU sed");
        assert!(links.contains_key("bin/sh"));
    }

    fn script_of(f: &Forge, p: &Package) -> String {
        f.node(p.node()).drv.builder.script().expect("a run step").to_owned()
    }

    #[test]
    fn glibc_is_configured_into_its_prefix_with_the_loader_in_lib() {
        let mut f = Forge::new();
        let g = glibc(&mut f).unwrap();
        assert_eq!(g.path().name(), "glibc-2.36");
        let s = script_of(&f, &g);
        assert!(s.contains("--prefix=/usr/glibc") && s.contains("--host=aarch64-linux-gnu"), "{s}");
        assert!(s.contains("echo 'rtlddir=/lib' > configparms"), "{s}");
        assert!(s.contains("/debian/patches/git-updates.diff"), "{s}");
        assert!(s.contains("ln -s /lib/ld-linux-aarch64.so.1 \"$out/lib64/ld-linux-aarch64.so.1\""), "{s}");
        let drv = &f.node(g.node()).drv;
        assert_eq!(drv.env["SOURCE_DATE_EPOCH"], GLIBC_EPOCH.to_string());
    }

    #[test]
    fn the_demo_root_stacks_musl_glibc_and_the_programs() {
        let mut f = Forge::new();
        let root = demo_root(&mut f).unwrap();
        let glibc = glibc(&mut f).unwrap();
        let musl = musl_aarch64(&mut f).unwrap();
        let programs = demo_programs(&mut f).unwrap();
        let inputs = &f.node(root.node()).drv.inputs;
        for layer in [&glibc, &musl, &programs] {
            assert!(inputs.contains(layer.path()), "{} not stacked", layer.path());
        }
        let s = script_of(&f, &programs);
        assert!(s.contains("-Wl,--dynamic-linker=/lib/ld-linux-aarch64.so.1"), "{s}");
        assert!(s.contains("-Wl,--dynamic-linker=/lib/ld-musl-aarch64.so.1"), "{s}");
    }
}
