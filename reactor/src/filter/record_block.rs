//! `POE::Filter::RecordBlock`: groups records into fixed-size blocks.

use super::{BoxedFilter, ConfigError, Filter, FilterError};
use std::collections::VecDeque;

/// `POE::Filter::RecordBlock`: `get_one` groups every `BlockSize` input records into one
/// `Vec` record; `put` flattens blocks back into records.
///
/// With `CheckPut` on, `put` emits only whole blocks' worth of records and keeps the
/// remainder for the next `put` ([`RecordBlock::put_pending`]); with it off, `put` first
/// flushes any remainder kept earlier, then every record given.
///
/// ```
/// use reactor::filter::{Filter, RecordBlock};
///
/// let mut rb = RecordBlock::new(2)?;
/// assert_eq!(rb.get(vec![1, 2, 3, 4, 5]).unwrap(), vec![vec![1, 2], vec![3, 4]]);
/// assert_eq!(rb.get_pending(), Some(vec![5]));
/// assert_eq!(rb.put(vec![vec![1, 2], vec![3]]).unwrap(), vec![1, 2, 3]);
/// # Ok::<(), reactor::filter::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct RecordBlock<T> {
    block_size: usize,
    check_put: bool,
    get_buf: VecDeque<T>,
    put_buf: VecDeque<T>,
}

impl<T> RecordBlock<T> {
    /// Blocks of `block_size` records (`BlockSize => N`, N > 0), `CheckPut` off.
    pub fn new(block_size: usize) -> Result<Self, ConfigError> {
        if block_size == 0 {
            return Err(ConfigError::ZeroBlockSize);
        }
        Ok(RecordBlock {
            block_size,
            check_put: false,
            get_buf: VecDeque::new(),
            put_buf: VecDeque::new(),
        })
    }

    /// Sets `CheckPut` (builder style).
    pub fn with_check_put(mut self, check_put: bool) -> Self {
        self.check_put = check_put;
        self
    }

    /// The block size (POE's `blocksize()`).
    pub fn blocksize(&self) -> usize {
        self.block_size
    }

    /// Changes the block size and returns the size in effect (POE's `blocksize(N)`): zero
    /// is ignored.
    pub fn set_blocksize(&mut self, block_size: usize) -> usize {
        if block_size > 0 {
            self.block_size = block_size;
        }
        self.block_size
    }

    /// Whether `CheckPut` is on (POE's `checkput()`).
    pub fn checkput(&self) -> bool {
        self.check_put
    }

    /// Turns `CheckPut` on or off (POE's `checkput(BOOL)`).
    pub fn set_checkput(&mut self, check_put: bool) {
        self.check_put = check_put;
    }
}

impl<T: Clone> RecordBlock<T> {
    /// Records `put` is holding back until a block is complete (`CheckPut` only), or
    /// `None` (POE's `put_pending()`).
    pub fn put_pending(&self) -> Option<Vec<T>> {
        if !self.check_put || self.put_buf.is_empty() {
            None
        } else {
            Some(self.put_buf.iter().cloned().collect())
        }
    }
}

impl<T: Clone + 'static> Filter for RecordBlock<T> {
    type Raw = T;
    type Record = Vec<T>;

    fn get_one_start(&mut self, records: Vec<T>) -> Result<(), FilterError> {
        self.get_buf.extend(records);
        Ok(())
    }

    fn get_one(&mut self) -> Result<Vec<Vec<T>>, FilterError> {
        if self.get_buf.len() < self.block_size {
            return Ok(Vec::new());
        }
        Ok(vec![self.get_buf.drain(..self.block_size).collect()])
    }

    fn put(&mut self, blocks: Vec<Vec<T>>) -> Result<Vec<T>, FilterError> {
        let mut out = Vec::new();
        if self.check_put {
            self.put_buf.extend(blocks.into_iter().flatten());
            let whole = self.put_buf.len() - self.put_buf.len() % self.block_size;
            out.extend(self.put_buf.drain(..whole));
        } else {
            out.extend(self.put_buf.drain(..));
            out.extend(blocks.into_iter().flatten());
        }
        Ok(out)
    }

    fn get_pending(&self) -> Option<Vec<T>> {
        if self.get_buf.is_empty() {
            None
        } else {
            Some(self.get_buf.iter().cloned().collect())
        }
    }

    fn clone_empty(&self) -> Self {
        RecordBlock {
            block_size: self.block_size,
            check_put: self.check_put,
            get_buf: VecDeque::new(),
            put_buf: VecDeque::new(),
        }
    }

    fn clone_boxed(&self) -> BoxedFilter<T, Vec<T>> {
        Box::new(self.clone_empty())
    }

    fn filter_type(&self) -> &'static str {
        "RecordBlock"
    }

    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }
}
