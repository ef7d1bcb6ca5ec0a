//! The musl cross toolchain: binutils + gcc + musl + Linux UAPI headers, built in the
//! sandbox into `aarch64-linux-musl-*` tools that run on x86_64 (and the same recipe for
//! `x86_64-linux-musl`), with the target's sysroot as a layer of its own.
//!
//! The build follows musl-cross-make's one-pass order, so gcc is compiled once:
//!
//! 1. binutils for the target (its own step and layer);
//! 2. in one step: Linux and musl headers into a build sysroot; gcc's `all-gcc`; a static
//!    libgcc; musl with that gcc; then the rest of gcc (shared libgcc, libstdc++,
//!    libatomic) against musl; everything installed with the sysroot at
//!    `/usr/<triple>/sysroot` inside the compiler's layer, where gcc and ld look for it
//!    (a path under the prefix, so both treat it as relocatable);
//! 3. the sysroot copied out into its own layer (musl, the kernel headers, libgcc_s,
//!    libstdc++), which device root filesystems stack.
//!
//! The host compiler is the bootstrap toolchain (Debian's gcc 12) plus g++ and the
//! GMP/MPFR/MPC headers of `data/debian-bookworm-cross.lock`. The tools link those
//! Debian libraries at run time, so a step that uses the toolchain stacks
//! [`CrossToolchain::layers`], which start with the bootstrap toolchain.
//!
//! Sources: musl 1.2.3 is upstream's tarball (Debian's orig is byte-identical).
//! binutils and gcc are Debian's own files, named as such: Debian's
//! `binutils_2.40.orig.tar.xz` differs from upstream's `binutils-2.40.tar.xz`, and
//! `gcc-12_12.2.0.orig.tar.gz` holds `gcc-12.2.0-dfsg.tar.xz`, gcc 12.2.0 without
//! its GFDL manuals (see docs/cross.md).

use std::collections::BTreeMap;

use forge_engine::dsl::{Forge, Input, Package, RunStep, Source};
use forge_engine::package::PackageBuilder;
use forge_engine::Result;

use crate::bootstrap::{self, DebPin};
use crate::examples;

const LOCK: &str = include_str!("../data/debian-bookworm-cross.lock");

/// binutils' version.
pub const BINUTILS_VERSION: &str = "2.40";
/// gcc's version.
pub const GCC_VERSION: &str = "12.2.0";
/// The triple of the machine the tools run on (the bootstrap toolchain's).
pub const BUILD_TRIPLE: &str = "x86_64-pc-linux-gnu";
/// The system the toolchain's steps, and every step that compiles with it, are
/// declared for ([`Forge::on_system`]): the machine of [`BUILD_TRIPLE`], whatever
/// the graph targets. So `forge build alpine-system --arch aarch64` shares them with
/// x86_64 graphs instead of declaring them again as aarch64 steps.
pub const BUILD_SYSTEM: &str = "x86_64-linux";

/// binutils 2.40 as Debian's source package `binutils` 2.40-2 ships it: NOT the
/// bytes of upstream's `binutils-2.40.tar.xz`, so it is pinned under Debian's name.
const BINUTILS_DEBIAN: Pin = Pin {
    file: "binutils_2.40.orig.tar.xz",
    url: "mirror://debian/pool/main/b/binutils/binutils_2.40.orig.tar.xz",
    sha256: "d78c2d2eb24a9be1e02f8854cb1bd435556d7f584fb6bfb6b07e6527d43fc41d",
};

/// Upstream's binutils 2.40 release; the sha256 as two independent package
/// collections pin it (Homebrew's formulas, a Python build project).
const BINUTILS_UPSTREAM: Pin = Pin {
    file: "binutils-2.40.tar.xz",
    url: "https://ftp.gnu.org/gnu/binutils/binutils-2.40.tar.xz",
    sha256: "0f8a4c272d7f17f369ded10a4aca28b8e304828e95526da482b0ccc4dfc9d8e1",
};

/// gcc-12 12.2.0-14+deb12u1's orig tarball: a tarball of tarballs, of which
/// [`GCC_DFSG_TARBALL`] is gcc 12.2.0 with the GFDL manuals removed.
const GCC_DEBIAN: Pin = Pin {
    file: "gcc-12_12.2.0.orig.tar.gz",
    url: "mirror://debian/pool/main/g/gcc-12/gcc-12_12.2.0.orig.tar.gz",
    sha256: "b8298be16aeeb96a889c6afed0a8e2241b47452e89cc81fe65ea849d5c740fcb",
};

/// Upstream's gcc 12.2.0 release; the sha256 as two independent package
/// collections pin it (a Homebrew formula, a Chromebrew-style package).
const GCC_UPSTREAM: Pin = Pin {
    file: "gcc-12.2.0.tar.xz",
    url: "https://ftp.gnu.org/gnu/gcc/gcc-12.2.0/gcc-12.2.0.tar.xz",
    sha256: "e549cf9cf3594a00e27b6589d4322d70e0720cdd213f39beb4181e06926230ff",
};

/// The gcc source inside Debian's gcc-12 orig tarball; it unpacks to `gcc-12.2.0/`.
pub const GCC_DFSG_TARBALL: &str = "gcc-12.2.0-dfsg.tar.xz";

/// Where binutils' and gcc's bytes come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sources {
    /// Debian's own files (binutils' orig, gcc-12's dfsg orig): what the mirror that
    /// `seed-debian.sh` fills holds, so what CI and offline builds use.
    Debian,
    /// Upstream's release tarballs from ftp.gnu.org: the connected configuration
    /// (not built here: no upstream server is reachable).
    Upstream,
}

impl Sources {
    fn key(self) -> &'static str {
        match self {
            Sources::Debian => "debian",
            Sources::Upstream => "upstream",
        }
    }
}

/// The host's `ar`, by its path: the bootstrap's busybox `sh` runs its own applets
/// before looking at `PATH`, and busybox's `ar` can only extract.
const HOST_AR: &str = "/usr/bin/ar";

/// Source epoch of the toolchain outputs: gcc 12.2.0's release, 2022-08-19.
const SOURCE_DATE_EPOCH: u64 = 1_660_867_200;

/// Declares `declare` once (memoized under `key`) for [`BUILD_SYSTEM`], whatever
/// system the graph targets: how every step that runs the cross toolchain, or the
/// toolchain's own build, is declared.
pub(crate) fn on_build_machine<T: Clone + Send + Sync + 'static>(
    f: &mut Forge,
    key: &str,
    declare: impl FnOnce(&mut Forge) -> Result<T>,
) -> Result<T> {
    f.on_system(BUILD_SYSTEM, |f| f.memo(key, declare))
}

/// A pinned source file.
pub(crate) struct Pin {
    pub(crate) file: &'static str,
    pub(crate) url: &'static str,
    pub(crate) sha256: &'static str,
}

impl Pin {
    pub(crate) fn fetch(&self, f: &mut Forge) -> Result<Source> {
        f.fetch(self.file, &[self.url], &format!("sha256:{}", self.sha256))
    }
}

/// A machine the toolchain compiles for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CrossTarget {
    /// 64-bit Arm: the comma 3/3X.
    Aarch64,
    /// x86_64: the "native" musl toolchain of a PC.
    X86_64,
}

impl CrossTarget {
    /// Every target, for tests and listings.
    pub const ALL: [CrossTarget; 2] = [CrossTarget::Aarch64, CrossTarget::X86_64];

    /// The target of a forge system name (`aarch64-linux`, `x86_64-linux`).
    pub fn from_system(system: &str) -> Option<CrossTarget> {
        match system {
            "aarch64-linux" => Some(CrossTarget::Aarch64),
            "x86_64-linux" => Some(CrossTarget::X86_64),
            _ => None,
        }
    }

    /// musl's name for the CPU (`aarch64`, `x86_64`).
    pub fn arch(self) -> &'static str {
        match self {
            CrossTarget::Aarch64 => "aarch64",
            CrossTarget::X86_64 => "x86_64",
        }
    }

    /// The GNU triple the tools are prefixed with: `aarch64-linux-musl`.
    pub fn triple(self) -> String {
        format!("{}-linux-musl", self.arch())
    }

    /// The dynamic loader its programs name: `/lib/ld-musl-aarch64.so.1`.
    pub fn loader(self) -> String {
        format!("/lib/ld-musl-{}.so.1", self.arch())
    }

    /// Debian's architecture of the kernel headers package (`arm64`, `amd64`).
    fn debian_arch(self) -> &'static str {
        match self {
            CrossTarget::Aarch64 => "arm64",
            CrossTarget::X86_64 => "amd64",
        }
    }

    /// Debian's multiarch folder holding `asm/` in `linux-libc-dev`.
    fn debian_multiarch(self) -> String {
        format!("{}-linux-gnu", self.arch())
    }

    /// Where gcc and ld look for the target's headers and libraries, relative to `/`.
    pub fn sysroot_dir(self) -> String {
        format!("usr/{}/sysroot", self.triple())
    }
}

/// The cross toolchain of one target, as layers.
#[derive(Clone, Debug)]
pub struct CrossToolchain {
    /// What it compiles for.
    pub target: CrossTarget,
    /// The bootstrap toolchain: the shell, make, and the glibc and libraries the tools
    /// run on.
    pub host: Package,
    /// binutils for the target: `/usr/bin/<triple>-{as,ld,ar,...}`.
    pub binutils: Package,
    /// gcc for the target: `/usr/bin/<triple>-{gcc,g++,cpp}`, with the sysroot inside.
    pub gcc: Package,
    /// The target's sysroot alone, an FHS layer: musl (`/lib/ld-musl-*.so.1`,
    /// `/usr/lib/libc.so`), the kernel headers, libgcc_s, libstdc++ and their headers.
    pub sysroot: Package,
}

impl CrossToolchain {
    /// The layers a step stacks to compile with this toolchain, bottom first.
    pub fn layers(&self) -> Vec<&Package> {
        vec![&self.host, &self.binutils, &self.gcc]
    }

    /// The variables that point build systems at the toolchain: `CC`, `CXX`, `AR`, ...,
    /// `CROSS_COMPILE` (kernel style) and `FORGE_CROSS_TRIPLE`.
    pub fn env(&self) -> BTreeMap<String, String> {
        let t = self.target.triple();
        let mut env: BTreeMap<String, String> = [
            ("CC", "gcc"),
            ("CXX", "g++"),
            ("CPP", "cpp"),
            ("AR", "ar"),
            ("AS", "as"),
            ("LD", "ld"),
            ("NM", "nm"),
            ("OBJCOPY", "objcopy"),
            ("OBJDUMP", "objdump"),
            ("RANLIB", "ranlib"),
            ("READELF", "readelf"),
            ("STRIP", "strip"),
        ]
        .iter()
        .map(|(var, tool)| (var.to_string(), format!("{t}-{tool}")))
        .collect();
        env.insert("CROSS_COMPILE".into(), format!("{t}-"));
        env.insert("FORGE_CROSS_TRIPLE".into(), t);
        env
    }

    /// What autotools' `configure` needs to cross-compile: `--build` and `--host`.
    pub fn configure_flags(&self) -> Vec<String> {
        vec![format!("--build={BUILD_TRIPLE}"), format!("--host={}", self.target.triple())]
    }
}

/// Lets a package recipe build for the device with the cross toolchain instead of
/// under qemu emulation.
///
/// ```
/// use forge_engine::dsl::{Forge, Input};
/// use forge_recipes::cross::{self, CrossTarget, CrossBuild};
/// let mut f = Forge::new();
/// let tc = cross::toolchain(&mut f, CrossTarget::Aarch64).unwrap();
/// let src = f.text("main.c", "int main(void) { return 0; }\n").unwrap();
/// let flags = tc.configure_flags();
/// let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
/// let pkg = f.package("demo", "1").source_tree(&src).cross(&tc).autotools(&flags).finish().unwrap();
/// assert!(pkg.path().to_string().ends_with("-demo-1"));
/// ```
pub trait CrossBuild {
    /// Stacks the toolchain's layers and sets `CC`, `CXX`, ... to its tools.
    fn cross(self, toolchain: &CrossToolchain) -> Self;
}

impl CrossBuild for PackageBuilder<'_> {
    fn cross(self, toolchain: &CrossToolchain) -> Self {
        let with_layers = toolchain.layers().into_iter().fold(self, |b, layer| b.build_dep(layer));
        toolchain.env().iter().fold(with_layers, |b, (k, v)| b.env(k, v))
    }
}

/// The pins of `data/debian-bookworm-cross.lock`.
pub fn host_pins() -> Vec<DebPin> {
    bootstrap::parse_lock(LOCK).expect("the bundled cross lock parses (checked by a test)")
}

/// What gcc's own build needs beyond the bootstrap toolchain: g++ 12 and the GMP,
/// MPFR and MPC headers (Debian packages of the cross lock), as one layer.
pub fn host_extras(f: &mut Forge) -> Result<Package> {
    f.memo("cross-host-extras", |f| {
        let layers = host_pins()
            .iter()
            .filter(|p| p.arch == "amd64")
            .map(|pin| bootstrap::unpack_pin(f, pin))
            .collect::<Result<Vec<_>>>()?;
        let inputs: Vec<&dyn Input> = layers.iter().map(|l| l as &dyn Input).collect();
        f.merge("cross-host-g++-12-gmp-mpfr-mpc", &inputs, &[("usr/bin/g++", "g++-12"), ("usr/bin/c++", "g++-12")])
    })
}

/// The unpacked `linux-libc-dev` of the target's Debian architecture.
pub fn kernel_headers(f: &mut Forge, target: CrossTarget) -> Result<Source> {
    let arch = target.debian_arch();
    let pin = host_pins()
        .into_iter()
        .chain(bootstrap::toolchain_pins())
        .find(|p| p.package == "linux-libc-dev" && p.arch == arch)
        .expect("the locks pin linux-libc-dev for every target (checked by a test)");
    bootstrap::unpack_pin(f, &pin)
}

/// The flags binutils is configured with for `target`.
pub fn binutils_flags(target: CrossTarget) -> Vec<String> {
    let t = target.triple();
    let mut flags = vec![
        format!("--build={BUILD_TRIPLE}"),
        format!("--host={BUILD_TRIPLE}"),
        format!("--target={t}"),
        format!("--with-sysroot=/{}", target.sysroot_dir()),
    ];
    flags.extend(
        [
            "--disable-multilib",
            "--disable-nls",
            "--disable-werror",
            "--disable-gold",
            "--disable-gprofng",
            "--disable-gdb",
            "--disable-sim",
            "--disable-plugins",
            "--disable-separate-code",
            "--enable-deterministic-archives",
            "--enable-default-hash-style=gnu",
        ]
        .map(String::from),
    );
    flags
}

/// binutils 2.40 for `target`, from `sources`.
pub fn binutils(f: &mut Forge, target: CrossTarget, sources: Sources) -> Result<Package> {
    on_build_machine(f, &format!("cross-binutils-{}-{}", target.triple(), sources.key()), |f| {
        let host = bootstrap::toolchain(f)?;
        let src = match sources {
            Sources::Debian => BINUTILS_DEBIAN.fetch(f)?,
            Sources::Upstream => BINUTILS_UPSTREAM.fetch(f)?,
        };
        let flags = binutils_flags(target);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        f.package(&format!("binutils-{}", target.triple()), BINUTILS_VERSION)
            .source(&src)
            .build_dep(&host)
            .env("AR", HOST_AR)
            .autotools(&flags)
            // Debian's tarball lacks bfd.info and there is no makeinfo: no manuals are
            // made (an empty INFO_DEPS reaches every automake subdir), as musl-cross-make does.
            .phase("build", "make -j\"$FORGE_BUILD_CORES\" MAKEINFO=true INFO_DEPS=")
            .phase("install", &binutils_install(target))
            .source_date_epoch(SOURCE_DATE_EPOCH)
            .finish()
    })
}

/// Installs binutils and drops what a cross toolchain does not ship (manuals).
fn binutils_install(target: CrossTarget) -> String {
    format!("make DESTDIR=\"$out\" MAKEINFO=true INFO_DEPS= install\nrm -rf \"$out/usr/share\"\ntest -x \"$out/usr/bin/{}-ld\"", target.triple())
}

/// The flags gcc is configured with for `target`.
pub fn gcc_flags(target: CrossTarget) -> Vec<String> {
    let t = target.triple();
    let sysroot = format!("/{}", target.sysroot_dir());
    let mut flags = vec![
        format!("--build={BUILD_TRIPLE}"),
        format!("--host={BUILD_TRIPLE}"),
        format!("--target={t}"),
        "--prefix=/usr".to_owned(),
        format!("--with-sysroot={sysroot}"),
        "--with-build-sysroot=/build/sysroot".to_owned(),
        // Under the sysroot, so gcc looks for them relative to it.
        format!("--with-gxx-include-dir={sysroot}/usr/include/c++/{GCC_VERSION}"),
        format!("--with-toolexeclibdir={sysroot}/usr/lib"),
    ];
    flags.extend(
        [
            "--enable-languages=c,c++",
            "--disable-multilib",
            "--disable-bootstrap",
            "--disable-nls",
            "--disable-werror",
            "--disable-lto",
            "--disable-libsanitizer",
            "--disable-libgomp",
            "--disable-libitm",
            "--disable-libssp",
            "--disable-libquadmath",
            "--disable-libvtv",
            "--disable-libcc1",
            "--disable-plugin",
            "--disable-libstdcxx-pch",
            "--disable-gnu-indirect-function",
            "--enable-tls",
            "--enable-libstdcxx-time",
            "--enable-__cxa_atexit",
            "--enable-default-pie",
            "--enable-checking=release",
        ]
        .map(String::from),
    );
    flags
}

/// gcc's source tree, and the script lines that put it at `/build/src/gcc-12.2.0`
/// (the tree is in `$gcc_src`).
fn gcc_source(f: &mut Forge, sources: Sources) -> Result<(Source, String)> {
    Ok(match sources {
        Sources::Debian => {
            let orig = GCC_DEBIAN.fetch(f)?;
            let tree = f.unpack(&format!("gcc-12-{GCC_VERSION}-debian-orig"), &orig, 1)?;
            // tar keeps the release's mtimes: generated files stay newer than their sources
            (tree, format!("xz -dc \"$gcc_src/{GCC_DFSG_TARBALL}\" | tar -xo"))
        }
        Sources::Upstream => {
            let tarball = GCC_UPSTREAM.fetch(f)?;
            let tree = f.unpack(&format!("gcc-{GCC_VERSION}-src"), &tarball, 0)?;
            // the store's one mtime on every file: make sees nothing to regenerate
            (tree, format!("cp -Rp \"$gcc_src/gcc-{GCC_VERSION}\" . && chmod -R u+w gcc-{GCC_VERSION}"))
        }
    })
}

/// gcc 12.2.0 with musl 1.2.3 for `target`: the compiler layer, sysroot inside.
pub fn gcc(f: &mut Forge, target: CrossTarget, sources: Sources) -> Result<Package> {
    on_build_machine(f, &format!("cross-gcc-{}-{}", target.triple(), sources.key()), |f| {
        let host = bootstrap::toolchain(f)?;
        let extras = host_extras(f)?;
        let binutils = binutils(f, target, sources)?;
        let (gcc_src, unpack_gcc) = gcc_source(f, sources)?;
        let musl_src = examples::musl_source(f)?;
        let musl_src = f.unpack("musl-1.2.3-src", &musl_src, 1)?;
        let headers = kernel_headers(f, target)?;
        let env = BTreeMap::from([
            ("gcc_src".to_owned(), gcc_src.path().to_string()),
            ("musl_src".to_owned(), musl_src.path().to_string()),
            ("kernel_headers".to_owned(), headers.path().to_string()),
            ("SOURCE_DATE_EPOCH".to_owned(), SOURCE_DATE_EPOCH.to_string()),
            ("AR".to_owned(), HOST_AR.to_owned()),
        ]);
        let script = gcc_script(target, &unpack_gcc);
        f.run(RunStep {
            name: &format!("gcc-{}-{GCC_VERSION}", target.triple()),
            sysroot: vec![&host, &extras, &binutils],
            inputs: vec![&gcc_src, &musl_src, &headers],
            script: &script,
            env,
        })
    })
}

/// The one-pass build script of gcc + musl (musl-cross-make's order).
pub fn gcc_script(target: CrossTarget, unpack_gcc: &str) -> String {
    let t = target.triple();
    let sysroot = target.sysroot_dir();
    let flags: String = gcc_flags(target).iter().map(|f| format!(" \\\n  '{f}'")).collect();
    let multiarch = target.debian_multiarch();
    let arch = target.arch();
    format!(
        r#"# gcc {GCC_VERSION} + musl 1.2.3 for {t}, in one pass
T={t}
N="$FORGE_BUILD_CORES"
mkdir -p /build/src && cd /build/src
{unpack_gcc}
cp -Rp "$musl_src" musl && chmod -R u+w musl

# The kernel UAPI headers (all of linux-libc-dev, its multiarch asm/ as asm/), then
# musl's, into the build sysroot: gcc's limits.h
# and fixincludes see the C library's headers from the start.
headers() {{
  mkdir -p "$1/usr/include"
  for d in "$kernel_headers"/usr/include/*; do
    case "$d" in */{multiarch}) ;; *) cp -R "$d" "$1/usr/include/" ;; esac
  done
  cp -R "$kernel_headers/usr/include/{multiarch}/asm" "$1/usr/include/asm"
}}
headers /build/sysroot
mkdir /build/musl-headers && cd /build/musl-headers
/build/src/musl/configure --target=$T --prefix=/usr CC=gcc
make DESTDIR=/build/sysroot install-headers

# gcc itself (compiled once), then a static libgcc to build musl with.
mkdir /build/gcc && cd /build/gcc
/build/src/gcc-{GCC_VERSION}/configure{flags} \
  CFLAGS=-O2 CXXFLAGS=-O2 CFLAGS_FOR_TARGET=-O2 CXXFLAGS_FOR_TARGET=-O2
make -j"$N" all-gcc
make -j"$N" MAKE="make enable_shared=no" all-target-libgcc

mkdir /build/musl && cd /build/musl
/build/src/musl/configure --target=$T --prefix=/usr --syslibdir=/lib \
  CC="/build/gcc/gcc/xgcc -B /build/gcc/gcc" LIBCC=/build/gcc/$T/libgcc/libgcc.a \
  AR=$T-ar RANLIB=$T-ranlib
make -j"$N"
make DESTDIR=/build/sysroot install

# The rest of gcc against musl: shared libgcc, libstdc++, libatomic.
cd /build/gcc
make -j"$N"
# Debian's repacked gcc strips the GFDL manuals down to stubs, tm.texi.in included:
# install would regenerate tm.texi from the stub and fail (genhooks: "No place
# specified to document hook"). No manual is installed, so the stamp is marked current.
touch gcc/s-tm-texi
make DESTDIR="$out" install
cd /build/musl && make DESTDIR="$out/{sysroot}" install
headers "$out/{sysroot}"
# A cross libgcc installs libgcc_s in /usr/$T/lib, outside the sysroot: programs need it
# at run time (libstdc++ links it), so it belongs to the sysroot's /usr/lib.
for f in $(find "$out/usr/$T" -path "$out/{sysroot}" -prune -o -name 'libgcc_s.so*' -print); do
  mv "$f" "$out/{sysroot}/usr/lib/"
done
rmdir "$out/usr/$T/lib" "$out/usr/$T/lib64" 2>/dev/null || true

# A relative loader link, so the sysroot works wherever it is mounted (qemu -L too).
ln -sf ../usr/lib/libc.so "$out/{sysroot}/lib/ld-musl-{arch}.so.1"
ln -sf $T-gcc "$out/usr/bin/$T-cc"
# libtool archives and gdb scripts name build paths; manuals are not shipped.
find "$out" -name '*.la' -exec rm -f {{}} +
find "$out" -name '*-gdb.py' -exec rm -f {{}} +
rm -rf "$out/usr/share"
test -x "$out/usr/bin/$T-g++"
"#
    )
}

/// The target's sysroot as its own layer, copied out of the compiler's.
pub fn sysroot(f: &mut Forge, target: CrossTarget, sources: Sources) -> Result<Package> {
    on_build_machine(f, &format!("cross-sysroot-{}-{}", target.triple(), sources.key()), |f| {
        let host = bootstrap::toolchain(f)?;
        let gcc = gcc(f, target, sources)?;
        // -R without -p: the store's read-only folders must stay writable while copying.
        // gcc installs its target libraries (libstdc++, libgcc_s, libatomic) in its
        // multilib OS directory, usr/lib64 on both targets; musl's loader searches /lib
        // and /usr/lib only, so the layer has them in usr/lib.
        let script = format!(
            "cp -R \"$gcc/{}/.\" \"$out/\"\n\
             if [ -d \"$out/usr/lib64\" ]; then\n  chmod -R u+w \"$out/usr\"\n  mv \"$out/usr/lib64/\"* \"$out/usr/lib/\"\n  rmdir \"$out/usr/lib64\"\nfi\n",
            target.sysroot_dir()
        );
        f.run(RunStep {
            name: &format!("sysroot-{}", target.triple()),
            sysroot: vec![&host],
            inputs: vec![&gcc],
            script: &script,
            env: BTreeMap::from([("gcc".to_owned(), gcc.path().to_string())]),
        })
    })
}

/// The whole toolchain for `target` from Debian's sources (what the seeded mirror
/// holds): host, binutils, gcc and sysroot layers.
pub fn toolchain(f: &mut Forge, target: CrossTarget) -> Result<CrossToolchain> {
    toolchain_from(f, target, Sources::Debian)
}

/// The whole toolchain for `target` from `sources`.
pub fn toolchain_from(f: &mut Forge, target: CrossTarget, sources: Sources) -> Result<CrossToolchain> {
    on_build_machine(f, &format!("cross-toolchain-{}-{}", target.triple(), sources.key()), |f| {
        Ok(CrossToolchain {
            target,
            host: bootstrap::toolchain(f)?,
            binutils: binutils(f, target, sources)?,
            gcc: gcc(f, target, sources)?,
            sysroot: sysroot(f, target, sources)?,
        })
    })
}

/// The C demo program: prints the machine it was compiled for and a computed value.
const DEMO_C: &str = r#"#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    unsigned long sum = 0;
    for (unsigned long i = 1; i <= 100; i++)
        sum += i * i;
    char *p = malloc(32);
    snprintf(p, 32, "%lu", sum);
    printf("hello from C on %s: sum of squares 1..100 = %s\n", FORGE_TARGET, p);
    free(p);
    return 0;
}
"#;

/// The C++ demo program: exercises libstdc++ (strings, vectors, algorithms, exceptions).
const DEMO_CXX: &str = r#"#include <algorithm>
#include <iostream>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

int main()
{
    std::vector<int> v(10);
    std::iota(v.begin(), v.end(), 1);
    std::reverse(v.begin(), v.end());
    int product = std::accumulate(v.begin(), v.begin() + 5, 1, [](int a, int b) { return a * b; });
    try {
        throw std::runtime_error("caught");
    } catch (const std::exception &e) {
        std::cout << "hello from C++ on " << FORGE_TARGET << ": " << e.what()
                  << ", 10*9*8*7*6 = " << product << std::endl;
    }
    return 0;
}
"#;

/// A C and a C++ program compiled with the toolchain, each static and dynamic:
/// `$out/usr/bin/hello-{c,cxx}{,-static}`, the dynamic ones for the target's musl loader.
pub fn demo(f: &mut Forge, target: CrossTarget) -> Result<Package> {
    on_build_machine(f, &format!("cross-demo-{}", target.triple()), |f| {
        let tc = toolchain(f, target)?;
        let c = f.text("hello.c", DEMO_C)?;
        let cxx = f.text("hello.cpp", DEMO_CXX)?;
        let mut env = tc.env();
        env.insert("hello_c".into(), c.path().to_string());
        env.insert("hello_cxx".into(), cxx.path().to_string());
        let script = format!(
            r#"mkdir -p "$out/usr/bin"
D='-DFORGE_TARGET="{t}"'
$CC -O2 "$D" -x c "$hello_c" -o "$out/usr/bin/hello-c"
$CC -O2 "$D" -static -x c "$hello_c" -o "$out/usr/bin/hello-c-static"
$CXX -O2 "$D" -x c++ "$hello_cxx" -o "$out/usr/bin/hello-cxx"
$CXX -O2 "$D" -static -x c++ "$hello_cxx" -o "$out/usr/bin/hello-cxx-static"
$STRIP "$out"/usr/bin/*
"#,
            t = target.triple()
        );
        f.run(RunStep {
            name: &format!("hello-{}", target.triple()),
            sysroot: tc.layers().into_iter().map(|l| l as &dyn Input).collect(),
            inputs: vec![&c, &cxx],
            script: &script,
            env,
        })
    })
}

/// GNU hello 2.10, a real autotools project, cross-compiled for `target` through
/// [`CrossBuild::cross`]: what a package recipe does to build for the device without
/// emulation (`configure --build=x86_64-pc-linux-gnu --host=<target>`, the toolchain's
/// `CC`). The program is dynamically linked against the sysroot's musl.
pub fn gnu_hello(f: &mut Forge, target: CrossTarget) -> Result<Package> {
    on_build_machine(f, &format!("gnu-hello-{}", target.triple()), |f| {
        let tc = toolchain(f, target)?;
        let src = crate::examples::hello_source(f)?;
        let mut flags = tc.configure_flags();
        flags.push("--disable-nls".into());
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        f.package(&format!("gnu-hello-{}", target.triple()), "2.10")
            .source(&src)
            .cross(&tc)
            .autotools(&flags)
            .source_date_epoch(crate::examples::HELLO_EPOCH)
            .finish()
    })
}

#[cfg(test)]
mod tests {
    use forge_engine::drv::Builder;

    use super::*;

    fn run_script(f: &Forge, p: &Package) -> (String, BTreeMap<String, String>) {
        let drv = &f.node(p.node()).drv;
        match &drv.builder {
            Builder::Run { script, .. } => (script.clone(), drv.env.clone()),
            other => panic!("not a run step: {other:?}"),
        }
    }

    fn sysroot_layers(f: &Forge, p: &Package) -> Vec<String> {
        match &f.node(p.node()).drv.builder {
            Builder::Run { sysroot, .. } => sysroot.iter().map(|l| l.name().to_owned()).collect(),
            other => panic!("not a run step: {other:?}"),
        }
    }

    #[test]
    fn the_cross_lock_pins_gxx_the_gmp_mpfr_mpc_headers_and_arm64_kernel_headers() {
        let pins = host_pins();
        for needed in ["g++-12", "libstdc++-12-dev", "libgmp-dev", "libmpfr-dev", "libmpc-dev"] {
            assert!(pins.iter().any(|p| p.package == needed && p.arch == "amd64"), "{needed} missing");
        }
        assert!(pins.iter().any(|p| p.package == "linux-libc-dev" && p.arch == "arm64"));
        assert!(pins.iter().all(|p| p.sha256.len() == 64 && p.pool_path.starts_with("pool/")));
        // the pool file name says the architecture the pin says
        assert!(pins.iter().all(|p| p.file_name().ends_with(&format!("_{}.deb", p.arch))));
    }

    #[test]
    fn both_targets_name_their_triple_loader_and_kernel_headers() {
        assert_eq!(CrossTarget::Aarch64.triple(), "aarch64-linux-musl");
        assert_eq!(CrossTarget::Aarch64.loader(), "/lib/ld-musl-aarch64.so.1");
        assert_eq!(CrossTarget::X86_64.loader(), "/lib/ld-musl-x86_64.so.1");
        assert_eq!(CrossTarget::from_system("aarch64-linux"), Some(CrossTarget::Aarch64));
        assert_eq!(CrossTarget::from_system("riscv64-linux"), None);
        let mut f = Forge::new();
        let arm = kernel_headers(&mut f, CrossTarget::Aarch64).unwrap();
        let x86 = kernel_headers(&mut f, CrossTarget::X86_64).unwrap();
        assert_ne!(arm.path(), x86.path());
    }

    #[test]
    fn binutils_and_gcc_target_musl_with_the_sysroot_under_the_prefix() {
        for target in CrossTarget::ALL {
            let t = target.triple();
            let b = binutils_flags(target);
            let g = gcc_flags(target);
            for flags in [&b, &g] {
                assert!(flags.contains(&format!("--target={t}")), "{flags:?}");
                assert!(flags.contains(&format!("--with-sysroot=/usr/{t}/sysroot")), "{flags:?}");
                assert!(flags.contains(&"--disable-multilib".to_owned()));
                assert!(flags.contains(&format!("--host={BUILD_TRIPLE}")));
            }
            assert!(b.contains(&"--enable-deterministic-archives".to_owned()));
            assert!(g.contains(&"--enable-languages=c,c++".to_owned()));
            assert!(g.contains(&"--disable-libsanitizer".to_owned()) && g.contains(&"--disable-libgomp".to_owned()));
            // libstdc++'s headers and libraries land in the sysroot, not beside it
            assert!(g.contains(&format!("--with-gxx-include-dir=/usr/{t}/sysroot/usr/include/c++/12.2.0")));
            assert!(g.contains(&format!("--with-toolexeclibdir=/usr/{t}/sysroot/usr/lib")));
        }
    }

    #[test]
    fn binutils_makes_no_manuals_and_archives_with_the_real_ar() {
        let mut f = Forge::new();
        let b = binutils(&mut f, CrossTarget::Aarch64, Sources::Debian).unwrap();
        let (script, env) = run_script(&f, &b);
        assert_eq!(env["AR"], "/usr/bin/ar");
        assert!(script.contains("make -j\"$FORGE_BUILD_CORES\" MAKEINFO=true INFO_DEPS="), "{script}");
        assert!(script.contains("make DESTDIR=\"$out\" MAKEINFO=true INFO_DEPS= install"), "{script}");
        assert!(script.contains("'--target=aarch64-linux-musl'"), "{script}");
        assert_eq!(sysroot_layers(&f, &b), ["bootstrap-toolchain-gcc-12"]);
    }

    #[test]
    fn the_gcc_step_builds_musl_in_one_pass_over_binutils_and_the_host_extras() {
        let mut f = Forge::new();
        let gcc = gcc(&mut f, CrossTarget::Aarch64, Sources::Debian).unwrap();
        let (script, env) = run_script(&f, &gcc);
        let order = [
            "install-headers",
            "make -j\"$N\" all-gcc",
            "all-target-libgcc",
            "LIBCC=",
            "touch gcc/s-tm-texi",
            "make DESTDIR=\"$out\" install",
        ];
        let at: Vec<usize> = order.iter().map(|s| script.find(s).unwrap_or_else(|| panic!("{s} missing"))).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "steps out of order: {at:?}");
        assert!(script.contains("gcc-12.2.0-dfsg.tar.xz") && script.contains("aarch64-linux-gnu/asm"));
        assert!(script
            .contains("ln -sf ../usr/lib/libc.so \"$out/usr/aarch64-linux-musl/sysroot/lib/ld-musl-aarch64.so.1\""));
        for var in ["gcc_src", "musl_src", "kernel_headers", "SOURCE_DATE_EPOCH"] {
            assert!(env.contains_key(var), "{var} missing");
        }
        // not busybox's applet, which sh would run for a bare `ar`
        assert_eq!(env["AR"], "/usr/bin/ar");
        let layers = sysroot_layers(&f, &gcc);
        assert_eq!(
            layers,
            ["bootstrap-toolchain-gcc-12", "cross-host-g++-12-gmp-mpfr-mpc", "binutils-aarch64-linux-musl-2.40"]
        );
        assert_eq!(gcc.path().name(), "gcc-aarch64-linux-musl-12.2.0");
    }

    /// Every file the toolchain fetches is one that `seed-debian.sh` puts in the mirror:
    /// a pin of a lock, or a line of `upstream-tarballs.txt` with the same sha256.
    #[test]
    fn every_fetched_source_is_pinned_and_seeded_from_debian() {
        let seeded: Vec<String> = include_str!("../mirror/upstream-tarballs.txt")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| l.split_whitespace().nth(4).map(str::to_owned))
            .chain(host_pins().into_iter().chain(bootstrap::toolchain_pins()).map(|p| p.sha256))
            .collect();
        for target in CrossTarget::ALL {
            let mut f = Forge::new();
            toolchain(&mut f, target).unwrap();
            let mut fetches = 0;
            for node in f.nodes() {
                if let Builder::Fetch { hash, .. } = &node.drv.builder {
                    let hex = hash.to_hex();
                    assert!(seeded.contains(&hex), "{} ({hex}) is not seeded", node.drv.name);
                    fetches += 1;
                }
            }
            assert!(fetches > 50, "{fetches}");
        }
    }

    #[test]
    fn debian_sources_keep_debian_names_and_pool_urls() {
        let mut f = Forge::new();
        gcc(&mut f, CrossTarget::X86_64, Sources::Debian).unwrap();
        let names: Vec<(&str, &Vec<String>)> = f
            .nodes()
            .iter()
            .filter_map(|n| match &n.drv.builder {
                Builder::Fetch { urls, .. } if n.drv.name.contains(".orig.") => Some((n.drv.name.as_str(), urls)),
                _ => None,
            })
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        for (name, urls) in names {
            assert!(urls.iter().all(|u| u.starts_with("mirror://debian/pool/") && u.ends_with(name)), "{urls:?}");
        }
    }

    #[test]
    fn the_upstream_configuration_fetches_gnu_release_tarballs_with_their_pins() {
        let mut f = Forge::new();
        let tc = toolchain_from(&mut f, CrossTarget::Aarch64, Sources::Upstream).unwrap();
        let fetched: Vec<(String, Vec<String>, String)> = f
            .nodes()
            .iter()
            .filter_map(|n| match &n.drv.builder {
                Builder::Fetch { urls, hash, .. } if urls[0].starts_with("https://ftp.gnu.org/") => {
                    Some((n.drv.name.clone(), urls.clone(), hash.to_hex()))
                }
                _ => None,
            })
            .collect();
        let names: Vec<&str> = fetched.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(names, ["binutils-2.40.tar.xz", "gcc-12.2.0.tar.xz"]);
        assert_eq!(fetched[1].2, "e549cf9cf3594a00e27b6589d4322d70e0720cdd213f39beb4181e06926230ff");
        let (script, _) = run_script(&f, &tc.gcc);
        assert!(script.contains("cp -Rp \"$gcc_src/gcc-12.2.0\" .") && !script.contains("dfsg"));
        // same configuration, other bytes: other store paths
        let debian = toolchain(&mut f, CrossTarget::Aarch64).unwrap();
        assert_ne!(debian.gcc.path(), tc.gcc.path());
        let (debian_script, _) = run_script(&f, &debian.gcc);
        let differing = script.lines().zip(debian_script.lines()).filter(|(a, b)| a != b).count();
        assert_eq!(differing, 1, "only the line that unpacks gcc differs");
    }

    #[test]
    fn the_sysroot_is_its_own_layer_and_the_toolchain_layers_start_with_the_bootstrap() {
        let mut f = Forge::new();
        let tc = toolchain(&mut f, CrossTarget::Aarch64).unwrap();
        assert_eq!(tc.sysroot.path().name(), "sysroot-aarch64-linux-musl");
        let (script, env) = run_script(&f, &tc.sysroot);
        assert!(script.contains("usr/aarch64-linux-musl/sysroot/."));
        // gcc's lib64 (its multilib OS dir) folded into usr/lib, where musl's loader looks
        assert!(script.contains("mv \"$out/usr/lib64/\"* \"$out/usr/lib/\""), "{script}");
        assert_eq!(env["gcc"], tc.gcc.path().to_string());
        let names: Vec<&str> = tc.layers().iter().map(|l| l.path().name()).collect();
        assert_eq!(
            names,
            ["bootstrap-toolchain-gcc-12", "binutils-aarch64-linux-musl-2.40", "gcc-aarch64-linux-musl-12.2.0"]
        );
        // the x86_64 one shares the host layers, nothing else
        let x86 = toolchain(&mut f, CrossTarget::X86_64).unwrap();
        assert_eq!(x86.host.path(), tc.host.path());
        assert_ne!(x86.gcc.path(), tc.gcc.path());
        assert_ne!(x86.binutils.path(), tc.binutils.path());
    }

    #[test]
    fn a_package_built_with_cross_stacks_the_toolchain_and_uses_its_compilers() {
        let mut f = Forge::new();
        let tc = toolchain(&mut f, CrossTarget::Aarch64).unwrap();
        let src =
            f.fetch("x.tar.gz", &["https://example.invalid/x.tar.gz"], &format!("sha256:{}", "0".repeat(64))).unwrap();
        let flags = tc.configure_flags();
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let pkg = f.package("x", "1").source(&src).cross(&tc).autotools(&flags).finish().unwrap();
        let (script, env) = run_script(&f, &pkg);
        assert_eq!(env["CC"], "aarch64-linux-musl-gcc");
        assert_eq!(env["CXX"], "aarch64-linux-musl-g++");
        assert_eq!(env["CROSS_COMPILE"], "aarch64-linux-musl-");
        assert!(script.contains("'--host=aarch64-linux-musl'"), "{script}");
        let layers = sysroot_layers(&f, &pkg);
        assert_eq!(
            layers[..],
            ["bootstrap-toolchain-gcc-12", "binutils-aarch64-linux-musl-2.40", "gcc-aarch64-linux-musl-12.2.0"]
        );
        // no emulation: the step runs on the build machine
        assert_eq!(f.node(pkg.node()).drv.system, f.system());
    }

    #[test]
    fn gnu_hello_is_configured_for_the_target_with_the_cross_compilers() {
        let mut f = Forge::new();
        let hello = gnu_hello(&mut f, CrossTarget::Aarch64).unwrap();
        assert_eq!(hello.path().name(), "gnu-hello-aarch64-linux-musl-2.10");
        let (script, env) = run_script(&f, &hello);
        for flag in ["'--build=x86_64-pc-linux-gnu'", "'--host=aarch64-linux-musl'", "'--disable-nls'"] {
            assert!(script.contains(flag), "{flag} missing from:\n{script}");
        }
        assert_eq!(env["CC"], "aarch64-linux-musl-gcc");
        assert_eq!(f.node(hello.node()).drv.system, f.system(), "built natively, not emulated");
    }

    #[test]
    fn the_demo_compiles_c_and_cxx_static_and_dynamic() {
        let mut f = Forge::new();
        let demo = demo(&mut f, CrossTarget::Aarch64).unwrap();
        let (script, env) = run_script(&f, &demo);
        for bin in ["hello-c\"", "hello-c-static\"", "hello-cxx\"", "hello-cxx-static\""] {
            assert!(script.contains(bin), "{bin} missing");
        }
        assert_eq!(env["CC"], "aarch64-linux-musl-gcc");
    }
}
