//! A merchant's own order list matched against a report file.
