//! Progress bars of long commands, on standard error (hidden when it is not a terminal).

use indicatif::{ProgressDrawTarget, ProgressState, ProgressStyle};

/// A bar over `len` items (or a counter when the length is unknown), showing the rate
/// and the time left, labelled `what`.
pub fn bar(len: Option<u64>, what: &'static str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr());
    let template = if len.is_some() {
        "{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} ({rate}, ETA {eta})"
    } else {
        "{msg} [{elapsed_precise}] {spinner} {pos} ({rate})"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.with_key(
            "rate",
            |state: &ProgressState, out: &mut dyn std::fmt::Write| {
                let _ = write!(out, "{:.0}/s", state.per_sec());
            },
        ));
    }
    bar.set_message(what);
    bar
}

/// A spinner with a message, for waits of unknown length.
pub fn spinner(what: &'static str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{elapsed_precise}]") {
        bar.set_style(style);
    }
    bar.set_message(what);
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

/// The progress bar type the command functions take; `ProgressBar::hidden()` draws
/// nothing.
pub use indicatif::ProgressBar;
