//! The parser proper: header, program headers, section headers, dynamic section,
//! dynamic symbols and GNU version tables.

use super::read::{Bytes, Fail};
use super::*;

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;

const SHT_DYNAMIC: u32 = 6;
const SHT_DYNSYM: u32 = 11;

const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_HASH: u64 = 4;
const DT_STRTAB: u64 = 5;
const DT_SYMTAB: u64 = 6;
const DT_STRSZ: u64 = 10;
const DT_SYMENT: u64 = 11;
const DT_SONAME: u64 = 14;
const DT_RPATH: u64 = 15;
const DT_RUNPATH: u64 = 29;
const DT_GNU_HASH: u64 = 0x6fff_fef5;
const DT_VERSYM: u64 = 0x6fff_fff0;
const DT_VERDEF: u64 = 0x6fff_fffc;
const DT_VERDEFNUM: u64 = 0x6fff_fffd;
const DT_VERNEED: u64 = 0x6fff_fffe;
const DT_VERNEEDNUM: u64 = 0x6fff_ffff;

const VER_FLG_BASE: u16 = 1;
const VER_FLG_WEAK: u16 = 2;
const VERSYM_HIDDEN: u16 = 0x8000;

/// Caps on table walks, far above anything real, so a crafted count cannot spin for hours.
const MAX_ENTRIES: u64 = 1 << 22;

struct Header {
    file_type: FileType,
    machine: Machine,
    flags: u32,
    phoff: u64,
    phentsize: u64,
    phnum: u64,
    shoff: u64,
    shentsize: u64,
    shnum: u64,
}

#[derive(Clone, Copy)]
struct Segment {
    kind: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
}

#[derive(Clone, Copy)]
struct Section {
    kind: u32,
    offset: u64,
    size: u64,
    entsize: u64,
}

/// One `.gnu.version_r` file entry: the library and its (version index, version) pairs.
type NeedEntry = (String, Vec<(u16, NeededVersion)>);

/// The raw dynamic section: tags in file order.
struct Dynamic(Vec<(u64, u64)>);

impl Dynamic {
    fn get(&self, tag: u64) -> Option<u64> {
        self.0.iter().find(|(t, _)| *t == tag).map(|(_, v)| *v)
    }

    fn all(&self, tag: u64) -> impl Iterator<Item = u64> + '_ {
        self.0.iter().filter(move |(t, _)| *t == tag).map(|(_, v)| *v)
    }
}

/// A parsed file: its bytes, segments and sections, to map addresses and find tables.
struct File<'a> {
    b: Bytes<'a>,
    segments: Vec<Segment>,
    sections: Vec<Section>,
}

pub(super) fn parse(data: &[u8]) -> Result<Elf, Fail> {
    let class = match data.get(4) {
        Some(1) => Class::Elf32,
        Some(2) => Class::Elf64,
        other => return Err(format!("unknown ELF class {other:?} in e_ident[4]")),
    };
    let endian = match data.get(5) {
        Some(1) => Endian::Little,
        Some(2) => Endian::Big,
        other => return Err(format!("unknown byte order {other:?} in e_ident[5]")),
    };
    let b = Bytes { data, class, endian };
    let h = header(&b)?;
    let segments = segments(&b, &h)?;
    let sections = sections(&b, &h)?;
    let file = File { b, segments, sections };
    let interpreter = file.interpreter()?;
    let mut elf = Elf {
        class,
        endian,
        machine: h.machine,
        file_type: h.file_type,
        flags: h.flags,
        interpreter,
        dynamic: false,
        needed: Vec::new(),
        soname: None,
        rpath: Vec::new(),
        runpath: Vec::new(),
        symbols: Vec::new(),
        version_needs: Vec::new(),
        version_defs: Vec::new(),
    };
    if let Some(dynamic) = file.dynamic()? {
        elf.dynamic = true;
        file.fill_dynamic(&dynamic, &mut elf)?;
    }
    Ok(elf)
}

fn header(b: &Bytes) -> Result<Header, Fail> {
    let file_type = match b.u16(16, "e_type")? {
        1 => FileType::Relocatable,
        2 => FileType::Executable,
        3 => FileType::Shared,
        4 => FileType::Core,
        n => FileType::Other(n),
    };
    let machine = Machine(b.u16(18, "e_machine")?);
    // Field offsets after e_entry differ by class: e_entry, e_phoff and e_shoff are words.
    let w = b.word_size();
    let phoff = b.word(24 + w, "e_phoff")?;
    let shoff = b.word(24 + 2 * w, "e_shoff")?;
    let rest = 24 + 3 * w;
    let flags = b.u32(rest, "e_flags")?;
    let phentsize = u64::from(b.u16(rest + 6, "e_phentsize")?);
    let phnum = u64::from(b.u16(rest + 8, "e_phnum")?);
    let shentsize = u64::from(b.u16(rest + 10, "e_shentsize")?);
    let mut shnum = u64::from(b.u16(rest + 12, "e_shnum")?);
    if shnum == 0 && shoff != 0 {
        // More than 0xff00 sections: the real count is section 0's sh_size.
        shnum = b.word(add(shoff, if w == 8 { 32 } else { 20 }, "e_shoff")?, "section 0 sh_size (extended e_shnum)")?;
    }
    let (min_ph, min_sh) = if w == 8 { (56, 64) } else { (32, 40) };
    if phnum > 0 && phentsize < min_ph {
        return Err(format!("e_phentsize {phentsize} is smaller than a program header ({min_ph})"));
    }
    if shnum > 0 && shoff != 0 && shentsize < min_sh {
        return Err(format!("e_shentsize {shentsize} is smaller than a section header ({min_sh})"));
    }
    Ok(Header { file_type, machine, flags, phoff, phentsize, phnum, shoff, shentsize, shnum })
}

/// No file is this large: offsets beyond it are refused where they are computed, so the
/// small field offsets added to them later cannot overflow.
const MAX_OFFSET: u64 = 1 << 48;

/// `base + delta` as a file offset, refused when it overflows or is implausibly large.
fn add(base: u64, delta: u64, what: &str) -> Result<u64, Fail> {
    base.checked_add(delta)
        .filter(|&o| o < MAX_OFFSET)
        .ok_or_else(|| format!("{what}: offset {base:#x} + {delta:#x} is out of range"))
}

/// Offset of entry `i` of a table at `base` with entries of `size` bytes, without overflow.
fn entry(base: u64, i: u64, size: u64, what: &str) -> Result<u64, Fail> {
    add(base, i.checked_mul(size).ok_or_else(|| format!("{what} {i}: offset overflows"))?, what)
}

fn segments(b: &Bytes, h: &Header) -> Result<Vec<Segment>, Fail> {
    let mut out = Vec::new();
    for i in 0..h.phnum {
        let at = entry(h.phoff, i, h.phentsize, "program header")?;
        let what = format!("program header {i}");
        let kind = b.u32(at, &what)?;
        let seg = match b.class {
            Class::Elf64 => Segment {
                kind,
                offset: b.u64(at + 8, &what)?,
                vaddr: b.u64(at + 16, &what)?,
                filesz: b.u64(at + 32, &what)?,
            },
            Class::Elf32 => Segment {
                kind,
                offset: u64::from(b.u32(at + 4, &what)?),
                vaddr: u64::from(b.u32(at + 8, &what)?),
                filesz: u64::from(b.u32(at + 16, &what)?),
            },
        };
        out.push(seg);
    }
    Ok(out)
}

fn sections(b: &Bytes, h: &Header) -> Result<Vec<Section>, Fail> {
    if h.shoff == 0 {
        return Ok(Vec::new());
    }
    if h.shnum > MAX_ENTRIES {
        return Err(format!("{} section headers is not plausible", h.shnum));
    }
    let mut out = Vec::new();
    for i in 0..h.shnum {
        let at = entry(h.shoff, i, h.shentsize, "section header")?;
        let what = format!("section header {i}");
        let sec = match b.class {
            Class::Elf64 => Section {
                kind: b.u32(at + 4, &what)?,
                offset: b.u64(at + 24, &what)?,
                size: b.u64(at + 32, &what)?,
                entsize: b.u64(at + 56, &what)?,
            },
            Class::Elf32 => Section {
                kind: b.u32(at + 4, &what)?,
                offset: u64::from(b.u32(at + 16, &what)?),
                size: u64::from(b.u32(at + 20, &what)?),
                entsize: u64::from(b.u32(at + 36, &what)?),
            },
        };
        out.push(sec);
    }
    Ok(out)
}

impl File<'_> {
    fn interpreter(&self) -> Result<Option<String>, Fail> {
        let Some(seg) = self.segments.iter().find(|s| s.kind == PT_INTERP) else { return Ok(None) };
        let raw = self.b.slice(seg.offset, seg.filesz, "PT_INTERP")?;
        let end = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
        Ok(Some(String::from_utf8_lossy(&raw[..end]).into_owned()))
    }

    /// The file offset holding virtual address `addr`, through the PT_LOAD segments.
    fn offset_of(&self, addr: u64, what: &str) -> Result<u64, Fail> {
        self.segments
            .iter()
            .filter(|s| s.kind == PT_LOAD)
            .find(|s| addr >= s.vaddr && addr - s.vaddr < s.filesz)
            .ok_or_else(|| format!("{what} address {addr:#x} is in no PT_LOAD segment"))
            .and_then(|s| add(s.offset, addr - s.vaddr, what))
    }

    /// The dynamic section's entries, from PT_DYNAMIC or else the SHT_DYNAMIC section.
    fn dynamic(&self) -> Result<Option<Dynamic>, Fail> {
        let place = match self.segments.iter().find(|s| s.kind == PT_DYNAMIC) {
            Some(seg) => (seg.offset, seg.filesz),
            None => match self.sections.iter().find(|s| s.kind == SHT_DYNAMIC) {
                Some(sec) => (sec.offset, sec.size),
                None => return Ok(None),
            },
        };
        let size = 2 * self.b.word_size();
        let mut tags = Vec::new();
        for i in 0..(place.1 / size).min(MAX_ENTRIES) {
            let at = entry(place.0, i, size, "dynamic entry")?;
            let tag = self.b.word(at, "dynamic entry d_tag")?;
            if tag == DT_NULL {
                break;
            }
            tags.push((tag, self.b.word(at + self.b.word_size(), "dynamic entry d_val")?));
        }
        Ok(Some(Dynamic(tags)))
    }

    fn fill_dynamic(&self, d: &Dynamic, elf: &mut Elf) -> Result<(), Fail> {
        let Some(strtab_addr) = d.get(DT_STRTAB) else {
            return if d.0.iter().any(|(t, _)| matches!(*t, DT_NEEDED | DT_SONAME | DT_RPATH | DT_RUNPATH)) {
                Err("the dynamic section names strings but has no DT_STRTAB".into())
            } else {
                Ok(())
            };
        };
        let strtab = (self.offset_of(strtab_addr, "DT_STRTAB")?, d.get(DT_STRSZ).unwrap_or(u64::MAX));
        let s = |off: u64, what: &str| self.b.str_in(strtab, off, what);
        for off in d.all(DT_NEEDED) {
            elf.needed.push(s(off, "DT_NEEDED")?);
        }
        elf.soname = d.get(DT_SONAME).map(|o| s(o, "DT_SONAME")).transpose()?;
        let split = |v: Option<String>| v.map(|p| p.split(':').map(str::to_owned).collect()).unwrap_or_default();
        elf.rpath = split(d.get(DT_RPATH).map(|o| s(o, "DT_RPATH")).transpose()?);
        elf.runpath = split(d.get(DT_RUNPATH).map(|o| s(o, "DT_RUNPATH")).transpose()?);
        elf.version_needs = self.version_needs(d, strtab)?;
        elf.version_defs = self.version_defs(d, strtab)?.into_iter().map(|(_, def)| def).collect();
        elf.symbols = self.symbols(d, strtab)?;
        Ok(())
    }

    /// `.gnu.version_r`: a list of files, each with a list of (index, version name).
    fn verneed_entries(&self, d: &Dynamic, strtab: (u64, u64)) -> Result<Vec<NeedEntry>, Fail> {
        let (Some(addr), Some(num)) = (d.get(DT_VERNEED), d.get(DT_VERNEEDNUM)) else { return Ok(Vec::new()) };
        let mut at = self.offset_of(addr, "DT_VERNEED")?;
        let mut out = Vec::new();
        for _ in 0..num.min(MAX_ENTRIES) {
            let b = &self.b;
            let count = b.u16(at + 2, "Verneed vn_cnt")?;
            let file = b.str_in(strtab, u64::from(b.u32(at + 4, "Verneed vn_file")?), "Verneed vn_file")?;
            let mut aux = add(at, u64::from(b.u32(at + 8, "Verneed vn_aux")?), "Verneed vn_aux")?;
            let mut versions = Vec::new();
            for _ in 0..count {
                let flags = b.u16(aux + 4, "Vernaux vna_flags")?;
                let index = b.u16(aux + 6, "Vernaux vna_other")?;
                let name = b.str_in(strtab, u64::from(b.u32(aux + 8, "Vernaux vna_name")?), "Vernaux vna_name")?;
                versions.push((index, NeededVersion { name, weak: flags & VER_FLG_WEAK != 0 }));
                let next = u64::from(b.u32(aux + 12, "Vernaux vna_next")?);
                if next == 0 {
                    break;
                }
                aux = add(aux, next, "Vernaux vna_next")?;
            }
            out.push((file, versions));
            let next = u64::from(b.u32(at + 12, "Verneed vn_next")?);
            if next == 0 {
                break;
            }
            at = add(at, next, "Verneed vn_next")?;
        }
        Ok(out)
    }

    fn version_needs(&self, d: &Dynamic, strtab: (u64, u64)) -> Result<Vec<VersionNeed>, Fail> {
        Ok(self
            .verneed_entries(d, strtab)?
            .into_iter()
            .map(|(file, v)| VersionNeed { file, versions: v.into_iter().map(|(_, n)| n).collect() })
            .collect())
    }

    /// `.gnu.version_d`: (index, definition) pairs; the name is the first Verdaux.
    fn version_defs(&self, d: &Dynamic, strtab: (u64, u64)) -> Result<Vec<(u16, VersionDef)>, Fail> {
        let (Some(addr), Some(num)) = (d.get(DT_VERDEF), d.get(DT_VERDEFNUM)) else { return Ok(Vec::new()) };
        let mut at = self.offset_of(addr, "DT_VERDEF")?;
        let mut out = Vec::new();
        let b = &self.b;
        for _ in 0..num.min(MAX_ENTRIES) {
            let flags = b.u16(at + 2, "Verdef vd_flags")?;
            let index = b.u16(at + 4, "Verdef vd_ndx")?;
            let aux = add(at, u64::from(b.u32(at + 12, "Verdef vd_aux")?), "Verdef vd_aux")?;
            let name = b.str_in(strtab, u64::from(b.u32(aux, "Verdaux vda_name")?), "Verdaux vda_name")?;
            out.push((index, VersionDef { name, base: flags & VER_FLG_BASE != 0 }));
            let next = u64::from(b.u32(at + 16, "Verdef vd_next")?);
            if next == 0 {
                break;
            }
            at = add(at, next, "Verdef vd_next")?;
        }
        Ok(out)
    }

    /// How many dynamic symbols there are: SHT_DYNSYM's size when sections exist, else
    /// DT_HASH's nchain, else the highest index reachable through DT_GNU_HASH.
    fn symbol_count(&self, d: &Dynamic, entsize: u64) -> Result<u64, Fail> {
        if let Some(sec) = self.sections.iter().find(|s| s.kind == SHT_DYNSYM) {
            return Ok(sec.size / sec.entsize.max(entsize));
        }
        if let Some(addr) = d.get(DT_HASH) {
            return Ok(u64::from(self.b.u32(self.offset_of(addr, "DT_HASH")? + 4, "DT_HASH nchain")?));
        }
        if let Some(addr) = d.get(DT_GNU_HASH) {
            return self.gnu_hash_count(self.offset_of(addr, "DT_GNU_HASH")?);
        }
        Ok(0)
    }

    fn gnu_hash_count(&self, at: u64) -> Result<u64, Fail> {
        let b = &self.b;
        let nbuckets = u64::from(b.u32(at, "DT_GNU_HASH nbuckets")?);
        let symoffset = u64::from(b.u32(at + 4, "DT_GNU_HASH symoffset")?);
        let bloom = u64::from(b.u32(at + 8, "DT_GNU_HASH bloom_size")?);
        let buckets = entry(add(at, 16, "DT_GNU_HASH")?, bloom, b.word_size(), "DT_GNU_HASH bloom")?;
        let mut last = 0u64;
        for i in 0..nbuckets.min(MAX_ENTRIES) {
            last = last.max(u64::from(b.u32(entry(buckets, i, 4, "DT_GNU_HASH bucket")?, "DT_GNU_HASH bucket")?));
        }
        if last < symoffset {
            return Ok(symoffset);
        }
        let chains = entry(buckets, nbuckets, 4, "DT_GNU_HASH chains")?;
        // Walk the last bucket's chain to its end (the entry with the low bit set).
        for _ in 0..MAX_ENTRIES {
            let h = b.u32(entry(chains, last - symoffset, 4, "DT_GNU_HASH chain")?, "DT_GNU_HASH chain")?;
            last += 1;
            if h & 1 == 1 {
                return Ok(last);
            }
        }
        Err("DT_GNU_HASH chain does not end".into())
    }

    fn symbols(&self, d: &Dynamic, strtab: (u64, u64)) -> Result<Vec<Symbol>, Fail> {
        let Some(addr) = d.get(DT_SYMTAB) else { return Ok(Vec::new()) };
        let entsize = d.get(DT_SYMENT).unwrap_or(if self.b.class == Class::Elf64 { 24 } else { 16 });
        if entsize < if self.b.class == Class::Elf64 { 24 } else { 16 } {
            return Err(format!("DT_SYMENT {entsize} is smaller than a symbol"));
        }
        let table = self.offset_of(addr, "DT_SYMTAB")?;
        let count = self.symbol_count(d, entsize)?.min(MAX_ENTRIES);
        let versym = d.get(DT_VERSYM).map(|a| self.offset_of(a, "DT_VERSYM")).transpose()?;
        let names = self.version_names(d, strtab)?;
        let mut out = Vec::new();
        for i in 1..count {
            let at = entry(table, i, entsize, "dynamic symbol")?;
            let mut sym = self.symbol(at, strtab)?;
            if let Some(vs) = versym {
                let raw = self.b.u16(entry(vs, i, 2, "versym")?, "versym entry")?;
                sym.version = names.get(&(raw & !VERSYM_HIDDEN)).map(|(name, file)| SymbolVersion {
                    name: name.clone(),
                    file: file.clone(),
                    hidden: raw & VERSYM_HIDDEN != 0,
                });
            }
            out.push(sym);
        }
        Ok(out)
    }

    /// Version index -> (name, file it is needed from), from both version tables;
    /// indexes 0 and 1 (local, global) have no name.
    fn version_names(
        &self,
        d: &Dynamic,
        strtab: (u64, u64),
    ) -> Result<std::collections::HashMap<u16, (String, Option<String>)>, Fail> {
        let mut names = std::collections::HashMap::new();
        for (index, def) in self.version_defs(d, strtab)? {
            if !def.base && index > 1 {
                names.insert(index, (def.name, None));
            }
        }
        for (file, versions) in self.verneed_entries(d, strtab)? {
            for (index, v) in versions {
                if index > 1 {
                    names.insert(index & !VERSYM_HIDDEN, (v.name, Some(file.clone())));
                }
            }
        }
        Ok(names)
    }

    fn symbol(&self, at: u64, strtab: (u64, u64)) -> Result<Symbol, Fail> {
        let b = &self.b;
        let name_off = u64::from(b.u32(at, "symbol st_name")?);
        let (info, shndx) = match b.class {
            Class::Elf64 => (b.u8(at + 4, "symbol st_info")?, b.u16(at + 6, "symbol st_shndx")?),
            Class::Elf32 => (b.u8(at + 12, "symbol st_info")?, b.u16(at + 14, "symbol st_shndx")?),
        };
        let binding = match info >> 4 {
            0 => Binding::Local,
            1 => Binding::Global,
            2 => Binding::Weak,
            10 => Binding::Unique,
            n => Binding::Other(n),
        };
        Ok(Symbol {
            name: b.str_in(strtab, name_off, "symbol name")?,
            defined: shndx != 0,
            binding,
            kind: info & 0xf,
            version: None,
        })
    }
}
