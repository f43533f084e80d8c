//! Whether a CSV source ends inside a quoted field. The CSV reader ends
//! such a field at the end of the input without a word, so one stray quote
//! made the rest of the file one value: a bad row at best, and, in the
//! last column, an accepted row holding every line after it. This reader
//! watches the bytes pass with the quoting rules of the CSV reader, and
//! remembers the line of a quote still open at the end.

use std::io::Read;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a field: a quote here opens a quoted field.
    FieldStart,
    /// In an unquoted field: a quote here is a character.
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: it closes it, or doubles as `""`.
    QuoteInQuoted,
}

/// Passes the bytes of `inner` on, following the quoting as it goes.
pub struct QuoteWatch<R> {
    inner: R,
    quote: u8,
    delimiter: u8,
    state: State,
    line: u64,
    opened_on: u64,
}

impl<R: Read> QuoteWatch<R> {
    pub fn new(inner: R, quote: u8, delimiter: u8) -> Self {
        Self {
            inner,
            quote,
            delimiter,
            state: State::FieldStart,
            line: 1,
            opened_on: 0,
        }
    }

    /// The line of the quote still open, once everything was read.
    pub fn unclosed_quote(&self) -> Option<u64> {
        (self.state == State::Quoted).then_some(self.opened_on)
    }

    fn step(&mut self, byte: u8) {
        let ends_field = byte == self.delimiter || byte == b'\n' || byte == b'\r';
        self.state = match self.state {
            State::FieldStart | State::Unquoted if ends_field => State::FieldStart,
            State::FieldStart if byte == self.quote => {
                self.opened_on = self.line;
                State::Quoted
            }
            State::FieldStart | State::Unquoted => State::Unquoted,
            State::Quoted if byte == self.quote => State::QuoteInQuoted,
            State::Quoted => State::Quoted,
            State::QuoteInQuoted if byte == self.quote => State::Quoted,
            State::QuoteInQuoted if ends_field => State::FieldStart,
            // The reader keeps what follows a closing quote as text.
            State::QuoteInQuoted => State::Unquoted,
        };
        if byte == b'\n' {
            self.line += 1;
        }
    }
}

impl<R: Read> Read for QuoteWatch<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &byte in &buf[..n] {
            self.step(byte);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unclosed(text: &str) -> Option<u64> {
        let mut watch = QuoteWatch::new(text.as_bytes(), b'"', b',');
        std::io::copy(&mut watch, &mut std::io::sink()).unwrap();
        watch.unclosed_quote()
    }

    #[test]
    fn a_quote_left_open_is_found_on_its_line() {
        assert_eq!(unclosed("a,b\n1,\"x\n2,y\n3,z\n"), Some(2));
        assert_eq!(unclosed("a,b\n1,2\n3,\"open"), Some(3));
    }

    #[test]
    fn closed_doubled_multi_line_and_literal_quotes_are_no_open_quote() {
        assert_eq!(
            unclosed("a,b\n1,\"x, \"\"y\"\"\"\n2,\"two\nlines\"\n"),
            None
        );
        assert_eq!(unclosed("a,b\n1,5\" pipe\n2,x\"y\"z\n"), None);
        assert_eq!(unclosed("a,b\r\n1,\"x\"\r\n"), None);
    }
}
