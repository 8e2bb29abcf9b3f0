// Package cache is s3edge's disk cache. It knows nothing of HTTP, S3 or the
// upstream: callers hand it a Fetcher (whole objects) or RangeFetcher
// (slices) and get back a Reader that serves stored files, or bytes as a
// fetch brings them in.
//
// # Lifecycle of an object
//
// Get looks the key up in the index. A stored entry is a hit: its content
// file is pinned (never unlinked under a reader) and opened; the Reader
// serves it, through sendfile where the destination allows. A miss joins
// the key's fill in progress, or starts one: a goroutine owned by the Cache
// (context: the Cache's lifetime, never a caller's) that calls the Fetcher
// once, decides admission (size, bucket limits, the admission filter, disk
// health, MinFreeDisk), and streams the body into a temporary file while
// every attached Reader follows it. At the end of the body, a body of
// exactly Meta.Size bytes is committed: fsync, rename to its content name,
// fsync the directory, index it. A failed or short body is an error for
// every reader (never io.EOF on a short body) and nothing is stored. A fill
// that is not stored (BYPASS) streams through a bounded memory window
// instead of the disk.
//
// Objects above Options.SliceThreshold, and every GetRange, are stored in
// slices aligned to Options.SliceSize, keyed by (key, ETag, slice index):
// a range fetches only the slices it touches, one fill per slice.
//
// Stage spools an upload; Pending.Commit stores it once the upstream
// acknowledged it. Invalidate and Purge drop entries and mark fills and
// stages of the key that started earlier as stale: those never store.
//
// # Storage and crash safety
//
//	<dir>/index.db                   bbolt (package indexdb): (bucket, object, slice) → content hash, size, access clock, Meta
//	<dir>/objects/ab/cd/<sha256-hex> content files (package blob), named by the SHA-256 of their bytes
//	<dir>/tmp/fill-*                 files being written
//
// Identical bytes under several keys are one file, reference-counted; a
// file is unlinked when no entry refers to it and no reader or fill pins
// it. Index changes are queued under Cache.mu, so index.db always holds a
// prefix of the index's history, and written in batches by one goroutine;
// an entry is queued only after its file is durable, and Invalidate waits
// until its removal is written. Recency is written in batches
// (FlushInterval), not on every hit.
//
// Open reads index.db and removes temporary files; it does not list the
// 65536 content directories (seconds of disk seeks after a reboot).
// Instead files are checked lazily: the size on every open, the SHA-256 on
// the first open of a file since Open (files this process wrote were
// hashed as they were written). Descriptors stay open between reads (up to
// Options.OpenFiles), so a file shortened under an open descriptor is
// caught by the read that comes up short instead. A file failing any check
// is never served; its entries are dropped and the next read refetches. A background scrub then
// lists the directories, removes files no entry names (a crash between a
// file's rename and its record) and drops entries whose file is gone.
//
// # Eviction and admission
//
// Each bucket has an LRU (golang-lru's simplelru) of its entries. When the
// bytes on disk plus the bytes reserved by fills in progress exceed
// MaxBytes, or the device has less than MinFreeDisk free, the cache evicts
// the least recently used entry nobody is reading, from the bucket whose
// bytes/weight is largest, so one tenant cannot evict another below its
// weighted share. A bucket with a hard cap (Buckets[].MaxBytes) evicts its
// own entries to stay under it. Shares and caps count a bucket's stored
// bytes and those its fills and uploads in progress reserved, so fills
// admitted at once cannot each take the same room. When the cache is
// full, a fetched object is admitted only if the admission filter prefers
// it to the entry it would evict (TinyLFU by default, package tinylfu).
//
// # Disk trouble
//
// A store error while writing (ENOSPC, EDQUOT, EROFS, EIO, ...) turns the
// fill into BYPASS: its readers go on from the window, the error is counted
// (Stats.DiskErrors) and logged at most once a minute, and fills and stages
// skip the disk for ten seconds before trying again.
//
// # Concurrency
//
// Lock order: Cache.mu, then fill.mu, then indexdb.DB's own lock.
// Cache.diskMu is never held with another lock. No lock is held across
// file or network I/O, or while calling a Fetcher or Store: files to
// unlink are collected under Cache.mu and removed after unlocking, and a
// file being unlinked blocks a new file of the same name until it is gone.
// Every goroutine (fills, revalidations, the index writer, the janitor,
// the scrub) is started with Cache.wg.Go while the Cache is open, recovers
// from panics, and stops when Close cancels the Cache's context.
package cache
