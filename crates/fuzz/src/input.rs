//! Structured values read from a fuzzer's bytes: the reader never fails, it gives zeros and
//! empty texts once the bytes run out.

pub(crate) struct Input<'a> {
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Input<'a> {
        Input { bytes }
    }

    pub(crate) fn byte(&mut self) -> u8 {
        match self.bytes.split_first() {
            Some((first, rest)) => {
                self.bytes = rest;
                *first
            }
            None => 0,
        }
    }

    pub(crate) fn take(&mut self, count: usize) -> &'a [u8] {
        let (taken, rest) = self.bytes.split_at(count.min(self.bytes.len()));
        self.bytes = rest;
        taken
    }

    pub(crate) fn i64(&mut self) -> i64 {
        let mut buf = [0u8; 8];
        let taken = self.take(8);
        buf[..taken.len()].copy_from_slice(taken);
        i64::from_le_bytes(buf)
    }

    /// Text of up to 255 bytes (a length byte, then the bytes, invalid UTF-8 replaced).
    pub(crate) fn text(&mut self) -> String {
        let length = usize::from(self.byte());
        String::from_utf8_lossy(self.take(length)).into_owned()
    }

    /// `None` or a text, as a flag byte says.
    pub(crate) fn optional_text(&mut self) -> Option<String> {
        if self.byte() & 1 == 1 { Some(self.text()) } else { None }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}
