//! Example packages compiled from their real upstream tarballs with the bootstrap
//! toolchain: the smallest complete builds, used by the tests and the docs.

use forge_engine::apk::make::ApkSpec;
use forge_engine::dsl::{ApkFile, Forge, Package, Source};
use forge_engine::Result;

use crate::bootstrap;

/// GNU hello 2.10's release, 2014-11-16: the `SOURCE_DATE_EPOCH` of its builds.
pub const HELLO_EPOCH: u64 = 1_416_265_060;

/// GNU hello 2.10's upstream tarball. Debian's `hello_2.10.orig.tar.gz` is this tarball
/// byte for byte.
pub fn hello_source(f: &mut Forge) -> Result<Source> {
    f.fetch(
        "hello-2.10.tar.gz",
        &["https://ftp.gnu.org/gnu/hello/hello-2.10.tar.gz"],
        "sha256:31e066137a962676e89f69d1b65382de95a7ef7d914b8cb956f41ea72e0f516b",
    )
}

/// GNU hello 2.10 built with the bootstrap toolchain.
pub fn hello(f: &mut Forge) -> Result<Package> {
    f.memo("hello", |f| {
        let toolchain = bootstrap::toolchain(f)?;
        let src = hello_source(f)?;
        f.package("hello", "2.10")
            .source(&src)
            .build_dep(&toolchain)
            .autotools(&["--disable-nls"])
            .source_date_epoch(HELLO_EPOCH)
            .finish()
    })
}

/// GNU hello packaged as an unsigned apk: `forge build hello-apk --apk-key KEY.rsa`
/// signs it into a repository beside the output link. Built with the bootstrap
/// toolchain, it needs glibc (`so:libc.so.6`, found by the automatic scan), so it is a
/// demonstration of the packaging, not a package for an Alpine system.
pub fn hello_apk(f: &mut Forge) -> Result<ApkFile> {
    f.memo("hello-apk", |f| {
        let tree = hello(f)?;
        let spec = ApkSpec {
            description: "GNU hello, the friendly greeter".into(),
            url: "https://www.gnu.org/software/hello/".into(),
            license: "GPL-3.0-or-later".into(),
            ..crate::apk_spec("hello", "2.10-r0", f.arch(), HELLO_EPOCH)
        };
        f.apk_package(&tree, &spec)
    })
}

/// musl 1.2.3's upstream release tarball. Debian's `musl_1.2.3.orig.tar.gz` is this
/// tarball byte for byte.
pub fn musl_source(f: &mut Forge) -> Result<Source> {
    f.fetch(
        "musl-1.2.3.tar.gz",
        &["https://musl.libc.org/releases/musl-1.2.3.tar.gz"],
        "sha256:7d5b0b6062521e4627e099e4c9dc8248d32a30285e959b7eecaa780cf8cfd4a4",
    )
}

/// musl 1.2.3, the C library of Alpine. Debian's `musl_1.2.3.orig.tar.gz` is this
/// tarball byte for byte.
pub fn musl(f: &mut Forge) -> Result<Package> {
    f.memo("musl", |f| {
        let toolchain = bootstrap::toolchain(f)?;
        let src = musl_source(f)?;
        f.package("musl", "1.2.3")
            .source(&src)
            .build_dep(&toolchain)
            .phase("configure", "./configure --prefix=/usr --syslibdir=/lib")
            .autotools(&[])
            .source_date_epoch(1_649_721_600) // musl 1.2.3's release, 2022-04-07
            .finish()
    })
}
