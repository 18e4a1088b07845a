//! A list of errors reported together (every problem of a program or plan at once).

use std::fmt;

/// Several errors, shown one per line (its `Debug` too: `?` in `main` prints the lines).
#[derive(Clone, PartialEq, Eq)]
pub struct ErrorList<E>(pub Vec<E>);

impl<E: fmt::Display> fmt::Debug for ErrorList<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<E: fmt::Display> fmt::Display for ErrorList<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for ErrorList<E> {}
