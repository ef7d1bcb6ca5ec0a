//! Bounds-checked reads of ELF fields: every access says what it reads, so a short or
//! hostile file gives an error naming the field instead of a panic.

use super::{Class, Endian};

/// A view of the file's bytes with the class and byte order its header declared.
#[derive(Clone, Copy)]
pub(super) struct Bytes<'a> {
    pub data: &'a [u8],
    pub class: Class,
    pub endian: Endian,
}

/// Why a read failed: the field and where, turned into `ElfError::Malformed` by the caller.
pub(super) type Fail = String;

impl<'a> Bytes<'a> {
    pub fn slice(&self, off: u64, len: u64, what: &str) -> Result<&'a [u8], Fail> {
        let end = off.checked_add(len).ok_or_else(|| format!("{what}: offset {off:#x} + {len:#x} overflows"))?;
        let (start, end) = (usize::try_from(off).ok(), usize::try_from(end).ok());
        match (start, end) {
            (Some(s), Some(e)) if e <= self.data.len() => Ok(&self.data[s..e]),
            _ => Err(format!(
                "{what} at {off:#x} (+{len:#x}) is past the end of the file ({:#x} bytes)",
                self.data.len()
            )),
        }
    }

    pub fn u8(&self, off: u64, what: &str) -> Result<u8, Fail> {
        Ok(self.slice(off, 1, what)?[0])
    }

    pub fn u16(&self, off: u64, what: &str) -> Result<u16, Fail> {
        let b: [u8; 2] = self.slice(off, 2, what)?.try_into().map_err(|_| what.to_owned())?;
        Ok(match self.endian {
            Endian::Little => u16::from_le_bytes(b),
            Endian::Big => u16::from_be_bytes(b),
        })
    }

    pub fn u32(&self, off: u64, what: &str) -> Result<u32, Fail> {
        let b: [u8; 4] = self.slice(off, 4, what)?.try_into().map_err(|_| what.to_owned())?;
        Ok(match self.endian {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
        })
    }

    pub fn u64(&self, off: u64, what: &str) -> Result<u64, Fail> {
        let b: [u8; 8] = self.slice(off, 8, what)?.try_into().map_err(|_| what.to_owned())?;
        Ok(match self.endian {
            Endian::Little => u64::from_le_bytes(b),
            Endian::Big => u64::from_be_bytes(b),
        })
    }

    /// An address-sized field: 4 bytes in ELF32, 8 in ELF64.
    pub fn word(&self, off: u64, what: &str) -> Result<u64, Fail> {
        match self.class {
            Class::Elf32 => self.u32(off, what).map(u64::from),
            Class::Elf64 => self.u64(off, what),
        }
    }

    /// The size of an address-sized field.
    pub fn word_size(&self) -> u64 {
        match self.class {
            Class::Elf32 => 4,
            Class::Elf64 => 8,
        }
    }

    /// A NUL-terminated string at `off` inside the string table `table` (offset, size).
    pub fn str_in(&self, table: (u64, u64), off: u64, what: &str) -> Result<String, Fail> {
        if off >= table.1 {
            return Err(format!("{what}: string offset {off:#x} is outside its table ({:#x} bytes)", table.1));
        }
        let start = table.0.checked_add(off).ok_or_else(|| format!("{what}: string offset overflows"))?;
        // A table may claim more bytes than the file has: the string only has to end inside both.
        let in_file = (self.data.len() as u64).saturating_sub(start);
        let rest = self.slice(start, (table.1 - off).min(in_file).max(1), what)?;
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| format!("{what}: string at {start:#x} is not terminated"))?;
        Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
    }
}
