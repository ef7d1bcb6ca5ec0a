//! ELF files as the dynamic loader sees them: class, byte order, machine, interpreter,
//! the dynamic section (needed libraries, soname, rpath/runpath) and the dynamic symbols
//! with their GNU versions (`.gnu.version`, `.gnu.version_r`, `.gnu.version_d`).
//!
//! Hand-written and bounds-checked: ELF32 and ELF64, little and big endian. Tables are
//! found the way the loader finds them, through the `DT_*` addresses mapped by the
//! `PT_LOAD` segments; section headers, when present, fill in what the dynamic section
//! leaves out (the symbol count). Any malformed or truncated input gives an
//! [`ElfError`], never a panic.

mod parse;
mod read;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use serde::Serialize;

/// What went wrong reading an ELF file; each variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    /// An I/O error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file does not start with the ELF magic.
    #[error("{path} is not an ELF file (no \\x7fELF magic)")]
    NotElf {
        /// The file.
        path: PathBuf,
    },
    /// The file is not a well-formed ELF file.
    #[error("{path} is a malformed ELF file: {why}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

/// 32- or 64-bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Class {
    /// `ELFCLASS32`.
    Elf32,
    /// `ELFCLASS64`.
    Elf64,
}

/// Byte order of every multi-byte field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Endian {
    /// `ELFDATA2LSB`.
    Little,
    /// `ELFDATA2MSB`.
    Big,
}

/// `e_machine`, with names for the architectures forge meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Machine(pub u16);

impl Machine {
    /// `EM_386`.
    pub const I386: Machine = Machine(3);
    /// `EM_ARM`.
    pub const ARM: Machine = Machine(40);
    /// `EM_X86_64`.
    pub const X86_64: Machine = Machine(62);
    /// `EM_AARCH64`.
    pub const AARCH64: Machine = Machine(183);
    /// `EM_RISCV`.
    pub const RISCV: Machine = Machine(243);

    /// The usual name (`x86_64`, `aarch64`, `arm`), or `machine-<n>` for the others.
    pub fn name(self) -> String {
        match self.0 {
            3 => "i386".into(),
            8 => "mips".into(),
            20 => "ppc".into(),
            21 => "ppc64".into(),
            22 => "s390".into(),
            40 => "arm".into(),
            62 => "x86_64".into(),
            183 => "aarch64".into(),
            243 => "riscv".into(),
            n => format!("machine-{n}"),
        }
    }
}

/// `e_type`: what kind of object this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FileType {
    /// `ET_REL`: an object file.
    Relocatable,
    /// `ET_EXEC`: an executable at a fixed address.
    Executable,
    /// A shared library or a position-independent executable.
    Shared,
    /// `ET_CORE`: a core dump.
    Core,
    /// Any other `e_type`.
    Other(u16),
}

/// Symbol binding (`STB_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Binding {
    /// `STB_LOCAL`.
    Local,
    /// `STB_GLOBAL`.
    Global,
    /// `STB_WEAK`: may stay undefined.
    Weak,
    /// `STB_GNU_UNIQUE`: global, one copy process-wide.
    Unique,
    /// Any other binding.
    Other(u8),
}

/// The GNU version attached to a dynamic symbol through `.gnu.version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SymbolVersion {
    /// The version name, like `GLIBC_2.17`.
    pub name: String,
    /// For a version from `.gnu.version_r` (what undefined symbols, and copy-relocated
    /// definitions in executables, carry): the library it is needed from.
    pub file: Option<String>,
    /// Hidden (`sym@VER` rather than the default `sym@@VER`): only versioned references bind to it.
    pub hidden: bool,
}

/// One entry of the dynamic symbol table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Symbol {
    /// The symbol's name.
    pub name: String,
    /// Defined here (`st_shndx != SHN_UNDEF`), or needed from elsewhere.
    pub defined: bool,
    /// Its binding.
    pub binding: Binding,
    /// `STT_*` (0 none, 1 object, 2 func, 6 tls, 10 gnu ifunc...).
    pub kind: u8,
    /// `None` when the file has no `.gnu.version`, or the symbol is unversioned (index 0 or 1).
    pub version: Option<SymbolVersion>,
}

/// One `.gnu.version_r` entry: versions this object needs from one library.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionNeed {
    /// The library, as named in DT_NEEDED (`libc.so.6`).
    pub file: String,
    /// The versions needed from it.
    pub versions: Vec<NeededVersion>,
}

/// One needed version, like `GLIBC_2.17`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NeededVersion {
    /// The version's name.
    pub name: String,
    /// `VER_FLG_WEAK`: the loader only warns when it is missing.
    pub weak: bool,
}

/// One `.gnu.version_d` entry: a version this object defines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionDef {
    /// The version's name.
    pub name: String,
    /// `VER_FLG_BASE`: the entry naming the file itself (its soname), not a real version.
    pub base: bool,
}

/// What the loader needs to know about one ELF file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Elf {
    /// 32- or 64-bit.
    pub class: Class,
    /// Byte order.
    pub endian: Endian,
    /// `e_machine`.
    pub machine: Machine,
    /// `e_type`.
    pub file_type: FileType,
    /// `e_flags` (the ARM float ABI lives here).
    pub flags: u32,
    /// `PT_INTERP`: the program interpreter (dynamic loader) path.
    pub interpreter: Option<String>,
    /// Whether the file has a `PT_DYNAMIC` segment (static executables have none).
    pub dynamic: bool,
    /// `DT_NEEDED`: the libraries it needs, in order.
    pub needed: Vec<String>,
    /// `DT_SONAME`: the name it is loaded under.
    pub soname: Option<String>,
    /// DT_RPATH split at `:`, unexpanded (`$ORIGIN` kept).
    pub rpath: Vec<String>,
    /// DT_RUNPATH split at `:`, unexpanded.
    pub runpath: Vec<String>,
    /// Dynamic symbols, table order, without the null symbol 0.
    pub symbols: Vec<Symbol>,
    /// `.gnu.version_r`: versions it needs, per library.
    pub version_needs: Vec<VersionNeed>,
    /// `.gnu.version_d`: versions it defines.
    pub version_defs: Vec<VersionDef>,
}

impl Elf {
    /// Reads and parses the file at `path`.
    pub fn open(path: &Path) -> Result<Elf, ElfError> {
        let data = std::fs::read(path).map_err(|source| ElfError::Io { path: path.to_owned(), source })?;
        Elf::parse(&data, path)
    }

    /// Parses an ELF image held in memory; `path` only names it in errors.
    pub fn parse(data: &[u8], path: &Path) -> Result<Elf, ElfError> {
        if data.len() < 4 || &data[..4] != b"\x7fELF" {
            return Err(ElfError::NotElf { path: path.to_owned() });
        }
        parse::parse(data).map_err(|why| ElfError::Malformed { path: path.to_owned(), why })
    }

    /// Whether `data` starts with the ELF magic.
    pub fn is_elf(data: &[u8]) -> bool {
        data.starts_with(b"\x7fELF")
    }

    /// A short description: `ELF64 LSB aarch64`, `ELF32 LSB arm hard-float`.
    pub fn describe(&self) -> String {
        let class = match self.class {
            Class::Elf32 => "ELF32",
            Class::Elf64 => "ELF64",
        };
        let endian = match self.endian {
            Endian::Little => "LSB",
            Endian::Big => "MSB",
        };
        let float = match self.flags & 0x600 {
            0x400 if self.machine == Machine::ARM => " hard-float",
            0x200 if self.machine == Machine::ARM => " soft-float",
            _ => "",
        };
        format!("{class} {endian} {}{float}", self.machine.name())
    }

    /// Whether the loader of `self` could load `other` into the same process: same class,
    /// byte order and machine, and on ARM the same float ABI.
    pub fn same_abi(&self, other: &Elf) -> bool {
        self.class == other.class
            && self.endian == other.endian
            && self.machine == other.machine
            && (self.machine != Machine::ARM || arm_float_abi_compatible(self.flags, other.flags))
    }
}

/// ARM hard-float (armhf) and soft-float (armel) objects cannot share a process; files
/// that declare neither (old ABIs) are taken as compatible, as glibc's loader does.
fn arm_float_abi_compatible(a: u32, b: u32) -> bool {
    const HARD: u32 = 0x400;
    const SOFT: u32 = 0x200;
    let declared = |f: u32| f & (HARD | SOFT);
    declared(a) == 0 || declared(b) == 0 || declared(a) == declared(b)
}
