//! [`FileStore`]: the [`Store`] for the workers of one host, over one file.

extern crate std;

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::vec::Vec;

use zeroize::Zeroize;

use super::{charge_cell, Charge, Lease, Loaded, Saved, Store, StoreError, MAX_BUDGET_ID_LEN};
use crate::preset::Budget;

/// The file's first bytes.
const MAGIC: [u8; 4] = *b"FAst";
/// The format version this code reads and writes.
const VERSION: u16 = 1;
/// Magic, version, budget count, generation, lease holder, lease end, state length.
const HEADER_LEN: usize = 4 + 2 + 2 + 8 + 8 + 8 + 4;
/// The CRC-32 at the end.
const CRC_LEN: usize = 4;

/// A [`Store`] over one file, for the workers (threads or processes) of one
/// host. Feature `std`.
///
/// Every operation takes an exclusive `flock` on a lock file next to it
/// (`<path>.lock`; a shared one for [`load`](Store::load)), reads the file,
/// and if anything changed writes the new content to `<path>.tmp`, `fsync`s
/// it, renames it over the file (atomic: a reader sees the old file or the
/// new one, never a mix) and, for a new state, `fsync`s the directory (a
/// lease, release or charge alone skips that sync: a power loss of the host
/// may forget one, see `write`). A process killed at any point leaves the
/// old or the new content; its `flock` ends with it.
///
/// Each worker opens its own `FileStore` on the same path (one per thread
/// too: the lock is per open file, so two `FileStore`s of one process
/// exclude each other as two processes do).
///
/// # Security
///
/// The file holds the session's tokens. It and its lock file are created
/// with mode `0600`, and an existing file or lock file that others can read
/// or write (any of the mode bits `0o077`) is refused with
/// [`FileStoreError::Permissions`] at every operation, before anything is
/// read. No state byte appears in an error or in `Debug` output (this type
/// holds none). Bytes read from the file are wiped from memory after use.
///
/// # Format (version 1, little-endian)
///
/// | Bytes | Field |
/// | --- | --- |
/// | 4 | magic `FAst` |
/// | 2 | format version, 1 |
/// | 2 | number of budgets `n` (at most [`FileStore::MAX_BUDGETS`]) |
/// | 8 | generation (0: empty) |
/// | 8 | lease holder |
/// | 8 | lease end, Unix ms (0: no lease) |
/// | 4 | state length `L` |
/// | `n` × (1 + `k` + 8) | per budget: name length `k` (1 to 32), the name, the GCRA cell (theoretical arrival time, Unix ms) |
/// | `L` | the state bytes (a session snapshot image) |
/// | 4 | CRC-32 (IEEE) of everything before it |
///
/// A file that does not match (magic, version, lengths, checksum) is
/// [`FileStoreError::Corrupt`]. A worker treats that like any store failure
/// (it keeps its own session going); repairing it is an operator's decision:
/// delete the file, and the next operation starts an empty store (workers
/// then save their state again, from generation 0). A missing file is an
/// empty store.
///
/// # Clock
///
/// The host's `SystemTime` in Unix ms, read once per operation while the lock
/// is held; [`with_clock`](FileStore::with_clock) injects another (tests).
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    lock_path: PathBuf,
    tmp_path: PathBuf,
    clock: fn() -> u64,
}

/// Why a [`FileStore`] operation failed. None of them carries state bytes.
#[derive(Debug)]
#[non_exhaustive]
pub enum FileStoreError {
    /// A file system call failed.
    Io {
        /// What the store was doing ("open the file", "lock", "rename", ...).
        step: &'static str,
        /// The operating system's error.
        source: io::Error,
    },
    /// The file or its lock file can be read or written by others than its
    /// owner: refused, nothing was read. `chmod 600` it (and consider its
    /// tokens exposed).
    Permissions {
        /// The file with the loose mode.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is not a version-1 store, or it is damaged; see
    /// [`FileStore`] for what to do.
    Corrupt {
        /// What did not match.
        reason: &'static str,
    },
    /// [`load`](Store::load)'s buffer is shorter than the state.
    BufferTooSmall {
        /// The state's length.
        needed: usize,
    },
    /// A [`charge`](Store::charge) budget name is empty or longer than
    /// [`MAX_BUDGET_ID_LEN`] bytes.
    BudgetId {
        /// Its length in bytes.
        len: usize,
    },
    /// A [`charge`](Store::charge) of a new budget name when the file holds
    /// [`FileStore::MAX_BUDGETS`] already.
    TooManyBudgets,
    /// A [`save`](Store::save) of more than 4 GiB.
    StateTooLarge {
        /// Its length in bytes.
        len: usize,
    },
    /// The generation reached `u64::MAX` (one save a nanosecond for 584
    /// years).
    GenerationExhausted,
}

impl core::fmt::Display for FileStoreError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FileStoreError::Io { step, source } => {
                write!(f, "file store: {step} failed: {source}")
            }
            FileStoreError::Permissions { path, mode } => write!(
                f,
                "file store: {} has mode {mode:o}: others may read or write it (chmod 600)",
                path.display()
            ),
            FileStoreError::Corrupt { reason } => {
                write!(f, "file store: the file is corrupt ({reason})")
            }
            FileStoreError::BufferTooSmall { needed } => {
                write!(f, "file store: the state needs a {needed}-byte buffer")
            }
            FileStoreError::BudgetId { len } => write!(
                f,
                "file store: a budget name is 1 to {MAX_BUDGET_ID_LEN} bytes, not {len}"
            ),
            FileStoreError::TooManyBudgets => write!(
                f,
                "file store: at most {} budget names",
                FileStore::MAX_BUDGETS
            ),
            FileStoreError::StateTooLarge { len } => {
                write!(f, "file store: a state of {len} bytes is too large")
            }
            FileStoreError::GenerationExhausted => {
                write!(f, "file store: the generation number is exhausted")
            }
        }
    }
}

impl std::error::Error for FileStoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FileStoreError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl StoreError for FileStoreError {
    fn needed_len(&self) -> Option<usize> {
        match self {
            FileStoreError::BufferTooSmall { needed } => Some(*needed),
            _ => None,
        }
    }
}

fn io_err(step: &'static str) -> impl FnOnce(io::Error) -> FileStoreError {
    move |source| FileStoreError::Io { step, source }
}

fn corrupt(reason: &'static str) -> FileStoreError {
    FileStoreError::Corrupt { reason }
}

/// The host clock in Unix ms (0 before 1970).
fn system_clock() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// CRC-32 (IEEE 802.3, reflected): the session's snapshot checksum.
fn crc32(data: &[u8]) -> u32 {
    crate::session::crc32(data, 0)
}

/// File bytes, wiped when dropped (they hold tokens).
struct Wiped(Vec<u8>);

impl Drop for Wiped {
    fn drop(&mut self) {
        self.0.as_mut_slice().zeroize();
    }
}

/// One budget's cell.
#[derive(Clone, Copy)]
struct Cell {
    name: [u8; MAX_BUDGET_ID_LEN],
    len: u8,
    tat: u64,
}

impl Cell {
    fn name(&self) -> &[u8] {
        self.name.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

/// The file's content besides the state bytes, parsed.
struct Image {
    generation: u64,
    holder: u64,
    until: u64,
    budgets: Vec<Cell>,
}

/// What an operation does to the file.
enum Change<'s> {
    /// Nothing: no write.
    No,
    /// The image changed (a lease, a release, a charge); the state bytes
    /// stay. Written without the directory sync (see `FileStore::write`).
    Image,
    /// The image changed and the state bytes are these. Written durably.
    State(&'s [u8]),
}

impl Image {
    const EMPTY: Image = Image {
        generation: 0,
        holder: 0,
        until: 0,
        budgets: Vec::new(),
    };

    /// Whether `holder` holds a live lease at `now`.
    fn held_by(&self, holder: u64, now: u64) -> bool {
        self.until > now && self.holder == holder
    }
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8], FileStoreError> {
    let (head, tail) = rest
        .split_at_checked(n)
        .ok_or(corrupt("shorter than its lengths say"))?;
    *rest = tail;
    Ok(head)
}

fn take_array<const N: usize>(rest: &mut &[u8]) -> Result<[u8; N], FileStoreError> {
    let mut out = [0u8; N];
    out.copy_from_slice(take(rest, N)?);
    Ok(out)
}

fn parse(bytes: &[u8]) -> Result<(Image, &[u8]), FileStoreError> {
    if bytes.len() < HEADER_LEN.saturating_add(CRC_LEN) {
        return Err(corrupt("too short"));
    }
    let (body, crc) = bytes
        .split_at_checked(bytes.len().saturating_sub(CRC_LEN))
        .ok_or(corrupt("too short"))?;
    let mut rest = body;
    if take_array::<4>(&mut rest)? != MAGIC {
        return Err(corrupt("not a fieldauth store file"));
    }
    if u16::from_le_bytes(take_array(&mut rest)?) != VERSION {
        return Err(corrupt("unknown format version"));
    }
    let mut crc_bytes = [0u8; CRC_LEN];
    crc_bytes.copy_from_slice(crc);
    if u32::from_le_bytes(crc_bytes) != crc32(body) {
        return Err(corrupt("checksum mismatch"));
    }
    let count = usize::from(u16::from_le_bytes(take_array(&mut rest)?));
    if count > FileStore::MAX_BUDGETS {
        return Err(corrupt("too many budgets"));
    }
    let generation = u64::from_le_bytes(take_array(&mut rest)?);
    let holder = u64::from_le_bytes(take_array(&mut rest)?);
    let until = u64::from_le_bytes(take_array(&mut rest)?);
    let state_len = u32::from_le_bytes(take_array(&mut rest)?);
    let state_len = usize::try_from(state_len).map_err(|_| corrupt("state too large"))?;
    let mut budgets = Vec::with_capacity(count);
    for _ in 0..count {
        let [len] = take_array::<1>(&mut rest)?;
        let name = take(&mut rest, usize::from(len))?;
        if name.is_empty() || name.len() > MAX_BUDGET_ID_LEN {
            return Err(corrupt("bad budget name"));
        }
        let mut cell = Cell {
            name: [0; MAX_BUDGET_ID_LEN],
            len,
            tat: u64::from_le_bytes(take_array(&mut rest)?),
        };
        if let Some(dst) = cell.name.get_mut(..name.len()) {
            dst.copy_from_slice(name);
        }
        budgets.push(cell);
    }
    let state = take(&mut rest, state_len)?;
    if !rest.is_empty() {
        return Err(corrupt("longer than its lengths say"));
    }
    if generation == 0 && !state.is_empty() {
        return Err(corrupt("a state without a generation"));
    }
    Ok((
        Image {
            generation,
            holder,
            until,
            budgets,
        },
        state,
    ))
}

fn encode(image: &Image, state: &[u8]) -> Result<Wiped, FileStoreError> {
    let state_len = u32::try_from(state.len())
        .map_err(|_| FileStoreError::StateTooLarge { len: state.len() })?;
    let count = u16::try_from(image.budgets.len()).map_err(|_| FileStoreError::TooManyBudgets)?;
    let cells: usize = image
        .budgets
        .iter()
        .map(|c| usize::from(c.len).saturating_add(9))
        .fold(0, usize::saturating_add);
    let mut out = Wiped(Vec::with_capacity(
        HEADER_LEN
            .saturating_add(cells)
            .saturating_add(state.len())
            .saturating_add(CRC_LEN),
    ));
    let v = &mut out.0;
    v.extend_from_slice(&MAGIC);
    v.extend_from_slice(&VERSION.to_le_bytes());
    v.extend_from_slice(&count.to_le_bytes());
    v.extend_from_slice(&image.generation.to_le_bytes());
    v.extend_from_slice(&image.holder.to_le_bytes());
    v.extend_from_slice(&image.until.to_le_bytes());
    v.extend_from_slice(&state_len.to_le_bytes());
    for cell in &image.budgets {
        v.push(cell.len);
        v.extend_from_slice(cell.name());
        v.extend_from_slice(&cell.tat.to_le_bytes());
    }
    v.extend_from_slice(state);
    let crc = crc32(v);
    v.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = OsString::from(path.as_os_str());
    s.push(suffix);
    PathBuf::from(s)
}

/// Refuses a file others may read or write.
fn check_mode(file: &File, path: &Path) -> Result<(), FileStoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file
            .metadata()
            .map_err(io_err("read the file's mode"))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(FileStoreError::Permissions {
                path: path.into(),
                mode: mode & 0o7777,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = (file, path);
    Ok(())
}

/// Options that create a file with mode 0600 (on Unix).
fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

impl FileStore {
    /// Most budget names one file holds.
    pub const MAX_BUDGETS: usize = 32;

    /// Opens the store at `path` (creating it and its lock file with mode
    /// 0600 if they do not exist), with the host clock.
    ///
    /// # Errors
    /// [`FileStoreError::Permissions`] if either file exists with a mode that
    /// lets others read or write it, [`FileStoreError::Corrupt`] if the file
    /// is not a store, [`FileStoreError::Io`] if they cannot be created or
    /// read.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, FileStoreError> {
        Self::with_clock(path, system_clock)
    }

    /// [`open`](Self::open) with another clock (Unix ms): tests, or a host
    /// whose workers agree on a clock other than the system's.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn with_clock(path: impl AsRef<Path>, clock: fn() -> u64) -> Result<Self, FileStoreError> {
        let path = path.as_ref();
        let mut store = FileStore {
            path: path.into(),
            lock_path: with_suffix(path, ".lock"),
            tmp_path: with_suffix(path, ".tmp"),
            clock,
        };
        // Checks both files and creates the store file if it is missing.
        store.update(|_, _| Ok(((), Change::No)), true)?;
        Ok(store)
    }

    /// The store file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens and locks the lock file (exclusive or shared); closing it
    /// releases the lock.
    fn lock(&self, exclusive: bool) -> Result<File, FileStoreError> {
        let file = private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.lock_path)
            .map_err(io_err("open the lock file"))?;
        check_mode(&file, &self.lock_path)?;
        if exclusive {
            file.lock().map_err(io_err("lock"))?;
        } else {
            file.lock_shared().map_err(io_err("lock"))?;
        }
        Ok(file)
    }

    /// The store file's bytes; `None` if it does not exist.
    fn read(&self) -> Result<Option<Wiped>, FileStoreError> {
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("open the file")(e)),
        };
        check_mode(&file, &self.path)?;
        let mut bytes = Wiped(Vec::new());
        file.read_to_end(&mut bytes.0)
            .map_err(io_err("read the file"))?;
        Ok(Some(bytes))
    }

    /// Replaces the store file with `bytes`: temporary file, fsync, rename,
    /// and, when `durable`, fsync of the directory.
    ///
    /// The file's data is always synced before the rename, so a power loss
    /// leaves the old file or the new one, never an empty one. The
    /// directory's sync makes the rename itself survive a power loss: needed
    /// for a new state (it may hold a rotated refresh token, and the old one
    /// is spent), not for a lease or a budget charge alone, which a power
    /// loss of the host may forget (every worker of the host is gone with
    /// it, and a forgotten charge only gives back a few requests). That
    /// sync was about a third of a charge's cost (measured: 540 against
    /// 340 µs per rewrite on the CI machine's disk).
    fn write(&self, bytes: &[u8], durable: bool) -> Result<(), FileStoreError> {
        // A temporary file left by a process killed mid-write: only the lock
        // holder writes it, so it is stale.
        match fs::remove_file(&self.tmp_path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove the old temporary file")(e)),
        }
        let written = private_options()
            .write(true)
            .create_new(true)
            .open(&self.tmp_path)
            .map_err(io_err("create the temporary file"))
            .and_then(|mut tmp| {
                tmp.write_all(bytes)
                    .map_err(io_err("write the temporary file"))?;
                tmp.sync_all().map_err(io_err("sync the temporary file"))
            })
            .and_then(|()| fs::rename(&self.tmp_path, &self.path).map_err(io_err("rename")));
        if written.is_err() {
            let _ = fs::remove_file(&self.tmp_path);
            return written;
        }
        if !durable {
            return Ok(());
        }
        // The rename itself is durable once the directory is synced; where a
        // directory cannot be opened or synced, the rename is still atomic.
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        if let Ok(dir) = File::open(dir) {
            let _ = dir.sync_all();
            #[cfg(test)]
            tests::DIR_SYNCS.with(|n| n.set(n.get().saturating_add(1)));
        }
        Ok(())
    }

    /// One atomic step: lock, read, `step` at the store's time, write if it
    /// says so, unlock.
    fn update<'s, T>(
        &mut self,
        step: impl FnOnce(&mut Image, u64) -> Result<(T, Change<'s>), FileStoreError>,
        create: bool,
    ) -> Result<T, FileStoreError> {
        let _lock = self.lock(true)?;
        let now = (self.clock)();
        let bytes = self.read()?;
        let (mut image, old_state, missing) = match &bytes {
            Some(bytes) => {
                let (image, state) = parse(&bytes.0)?;
                (image, state, false)
            }
            None => (Image::EMPTY, &[][..], true),
        };
        let (out, write) = step(&mut image, now)?;
        let (state, durable) = match write {
            Change::No if !(create && missing) => return Ok(out),
            Change::No | Change::Image => (old_state, false),
            Change::State(state) => (state, true),
        };
        self.write(&encode(&image, state)?.0, durable)?;
        Ok(out)
    }
}

impl Store for FileStore {
    type Error = FileStoreError;

    fn load(&mut self, buf: &mut [u8]) -> Result<Option<Loaded>, FileStoreError> {
        let _lock = self.lock(false)?;
        let Some(bytes) = self.read()? else {
            return Ok(None);
        };
        let (image, state) = parse(&bytes.0)?;
        if image.generation == 0 {
            return Ok(None);
        }
        let len = state.len();
        let dst = buf
            .get_mut(..len)
            .ok_or(FileStoreError::BufferTooSmall { needed: len })?;
        dst.copy_from_slice(state);
        Ok(Some(Loaded {
            generation: image.generation,
            len,
        }))
    }

    fn lease(&mut self, holder: u64, ttl_ms: u32) -> Result<Lease, FileStoreError> {
        self.update(
            |image, now| {
                if image.until > now && image.holder != holder {
                    return Ok((
                        Lease::Busy {
                            until_ms: image.until,
                        },
                        Change::No,
                    ));
                }
                image.holder = holder;
                image.until = now.saturating_add(u64::from(ttl_ms));
                Ok((
                    Lease::Held {
                        until_ms: image.until,
                    },
                    Change::Image,
                ))
            },
            false,
        )
    }

    fn save(
        &mut self,
        holder: u64,
        expected_generation: u64,
        state: &[u8],
    ) -> Result<Saved, FileStoreError> {
        self.update(
            |image, now| {
                if !image.held_by(holder, now) {
                    return Ok((Saved::NotHolder, Change::No));
                }
                if image.generation != expected_generation {
                    return Ok((
                        Saved::Stale {
                            generation: image.generation,
                        },
                        Change::No,
                    ));
                }
                let generation = expected_generation
                    .checked_add(1)
                    .ok_or(FileStoreError::GenerationExhausted)?;
                image.generation = generation;
                Ok((Saved::Stored { generation }, Change::State(state)))
            },
            false,
        )
    }

    fn release(&mut self, holder: u64) -> Result<(), FileStoreError> {
        self.update(
            |image, now| {
                if !image.held_by(holder, now) {
                    return Ok(((), Change::No));
                }
                image.holder = 0;
                image.until = 0;
                Ok(((), Change::Image))
            },
            false,
        )
    }

    fn charge(&mut self, budget_id: &str, budget: Budget) -> Result<Charge, FileStoreError> {
        let id = budget_id.as_bytes();
        let len = u8::try_from(id.len())
            .ok()
            .filter(|&len| len > 0 && usize::from(len) <= MAX_BUDGET_ID_LEN)
            .ok_or(FileStoreError::BudgetId { len: id.len() })?;
        self.update(
            |image, now| {
                let at = match image.budgets.iter().position(|c| c.name() == id) {
                    Some(at) => at,
                    None => {
                        if image.budgets.len() >= FileStore::MAX_BUDGETS {
                            return Err(FileStoreError::TooManyBudgets);
                        }
                        let mut cell = Cell {
                            name: [0; MAX_BUDGET_ID_LEN],
                            len,
                            tat: 0,
                        };
                        if let Some(dst) = cell.name.get_mut(..id.len()) {
                            dst.copy_from_slice(id);
                        }
                        image.budgets.push(cell);
                        image.budgets.len().saturating_sub(1)
                    }
                };
                let Some(cell) = image.budgets.get_mut(at) else {
                    return Err(corrupt("budget table"));
                };
                let (answer, tat) = charge_cell(cell.tat, now, budget);
                // A refused charge changes nothing (a new name that was
                // refused is not worth a write either).
                let write = if tat == cell.tat {
                    Change::No
                } else {
                    Change::Image
                };
                cell.tat = tat;
                Ok((answer, write))
            },
            false,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell as Counter;

    std::thread_local! {
        /// Directory syncs by this thread's writes.
        pub(super) static DIR_SYNCS: Counter<u32> = const { Counter::new(0) };
    }

    fn dir_syncs(step: impl FnOnce()) -> u32 {
        DIR_SYNCS.with(|n| n.set(0));
        step();
        DIR_SYNCS.with(|n| n.get())
    }

    /// Only a new state (it may hold a rotated refresh token) makes its
    /// rename durable with a directory sync; a lease, a charge and a release
    /// skip that sync (the file's data is synced before every rename).
    #[test]
    fn only_a_new_state_syncs_the_directory() {
        let dir = std::env::temp_dir().join(std::format!(
            "fieldauth-dir-sync-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let mut store = FileStore::open(dir.join("state")).unwrap();
        let budget = Budget {
            requests: 2,
            window_s: 60,
            burst: 2,
        };
        assert_eq!(
            dir_syncs(|| assert!(matches!(store.lease(7, 5_000), Ok(Lease::Held { .. })))),
            0
        );
        assert_eq!(
            dir_syncs(|| assert_eq!(store.charge("api", budget).unwrap(), Charge::Granted)),
            0
        );
        assert_eq!(
            dir_syncs(|| assert!(matches!(
                store.save(7, 0, b"state"),
                Ok(Saved::Stored { .. })
            ))),
            1
        );
        assert_eq!(dir_syncs(|| store.release(7).unwrap()), 0);
        let mut buf = [0u8; 16];
        let loaded = store.load(&mut buf).unwrap().unwrap();
        assert_eq!(loaded.generation, 1);
        fs::remove_dir_all(&dir).unwrap();
    }
}
