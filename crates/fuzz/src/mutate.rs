//! The short pass that `cargo test` runs: each target over its committed seeds, then over a
//! fixed number of inputs mutated from them by a seeded generator, so every run tries the same
//! inputs and a failure names the input that failed.

use std::path::{Path, PathBuf};

use crate::Target;

/// The committed seeds of `name`, sorted by file name.
pub(crate) fn seeds(name: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds").join(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("the seeds of {name} in {}: {error}", dir.display()))
        .map(|entry| entry.map(|entry| entry.path()).unwrap_or_default())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let bytes =
                std::fs::read(&path).unwrap_or_else(|error| panic!("seed {}: {error}", path.display()));
            (path, bytes)
        })
        .collect()
}

/// A small xorshift generator: the same seed gives the same inputs on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, bound: usize) -> usize {
        if bound == 0 { 0 } else { (self.next() % bound as u64) as usize }
    }
}

/// Bytes that mutations insert: the ones that separate, quote, escape and end things.
const INTERESTING: &[u8] = b"\0\n\r\t \"',./:;=%+-_\\{}[]0123456789eE\x7f\xff\xc3";

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, other: &[u8]) {
    for _ in 0..=rng.below(4) {
        match rng.below(7) {
            0 if !input.is_empty() => {
                let at = rng.below(input.len());
                input[at] ^= 1 << rng.below(8);
            }
            1 if !input.is_empty() => {
                let at = rng.below(input.len());
                input[at] = rng.next() as u8;
            }
            2 => {
                let at = rng.below(input.len() + 1);
                input.insert(at, INTERESTING[rng.below(INTERESTING.len())]);
            }
            3 if !input.is_empty() => {
                let at = rng.below(input.len());
                let end = (at + 1 + rng.below(8)).min(input.len());
                input.drain(at..end);
            }
            4 if !other.is_empty() => {
                // Splice a piece of another seed in.
                let from = rng.below(other.len());
                let end = (from + 1 + rng.below(32)).min(other.len());
                let at = rng.below(input.len() + 1);
                input.splice(at..at, other[from..end].iter().copied());
            }
            5 if !input.is_empty() => {
                // Repeat a piece, to grow lengths and nesting.
                let from = rng.below(input.len());
                let end = (from + 1 + rng.below(16)).min(input.len());
                let piece = input[from..end].to_vec();
                let at = rng.below(input.len() + 1);
                input.splice(at..at, piece);
            }
            _ => {
                let at = rng.below(input.len() + 1);
                input.truncate(at);
            }
        }
    }
}

/// Runs `target` over the seeds of `name` and `mutations` inputs mutated from them (or from
/// nothing, when there are no seeds). A panic names the input that caused it.
pub fn short_pass(name: &str, target: Target, mutations: usize) {
    let seeds = seeds(name);
    for (path, bytes) in &seeds {
        run(target, bytes, || format!("seed {}", path.display()));
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ name.len() as u64);
    let pool: Vec<&[u8]> =
        if seeds.is_empty() { vec![&[]] } else { seeds.iter().map(|(_, bytes)| bytes.as_slice()).collect() };
    for n in 0..mutations {
        let mut input = pool[rng.below(pool.len())].to_vec();
        let other = pool[rng.below(pool.len())];
        mutate(&mut rng, &mut input, other);
        run(target, &input, || format!("mutation {n} of {name}: {input:?}"));
    }
}

fn run(target: Target, bytes: &[u8], describe: impl FnOnce() -> String) {
    if let Err(panic) = std::panic::catch_unwind(|| target(bytes)) {
        let message = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        panic!("{}: {message}", describe());
    }
}
