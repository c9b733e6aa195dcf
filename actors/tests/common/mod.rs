//! What the actor tests share: embedded stores in a temporary directory, and every actor
//! started over them the way the engine starts them, with the processors off (the tests
//! store through the archive actor directly).

use std::sync::Arc;

use mnemo_actors::analysis::emotion_scoring::EmotionLexicon;
use mnemo_actors::config::ActorsConfig;
use mnemo_actors::runtime::faults::Faults;
use mnemo_actors::system::{self, Handles, Setup};
use mnemo_storage::clock::{ManualClock, SharedClock};
use mnemo_storage::conformance::t0;
use mnemo_storage::model::TurnId;
use mnemo_storage::{StorageConfig, Tiers};

/// Embedded stores in a temporary directory (removed on drop).
pub struct Stores {
    /// Where the stores live; removed when dropped.
    pub _dir: tempfile::TempDir,
    pub tiers: Tiers,
    pub clock: SharedClock,
}

/// Opens the embedded stores, the index in memory.
pub async fn open_stores() -> Stores {
    let dir = tempfile::TempDir::new().expect("a temporary directory");
    let clock: SharedClock = ManualClock::new(t0());
    let mut storage = StorageConfig {
        data_dir: dir.path().to_owned(),
        ..StorageConfig::default()
    };
    storage.index.in_memory = true;
    let tiers = Tiers::open(&storage, clock.clone())
        .await
        .expect("the stores open");
    Stores {
        _dir: dir,
        tiers,
        clock,
    }
}

/// Starts every actor over `stores`, with the processors off.
#[allow(dead_code)] // Not every test file that shares this module uses it.
pub fn start_actors(stores: &Stores, faults: Arc<Faults>) -> Handles {
    start_actors_with(stores, faults, |_| {})
}

/// Starts every actor over `stores` with the processors off, after `configure` has
/// changed their settings (and may switch processors on).
#[allow(dead_code)] // Not every test file that shares this module uses it.
pub fn start_actors_with(
    stores: &Stores,
    faults: Arc<Faults>,
    configure: impl FnOnce(&mut ActorsConfig),
) -> Handles {
    let mut config = ActorsConfig::default();
    config.processors.emotion.enabled = false;
    config.processors.indexer.enabled = false;
    config.processors.summarizer.enabled = false;
    config.processors.graph_sync.enabled = false;
    configure(&mut config);
    system::start(Setup {
        tiers: stores.tiers.clone(),
        graph_enabled: true,
        config,
        recent_fill: 50,
        clock: stores.clock.clone(),
        head: TurnId(0),
        index_mark: Default::default(),
        recent_gaps: Vec::new(),
        lexicon: Arc::new(EmotionLexicon::builtin()),
        bpe: Arc::new(mnemo_actors::context::tokens::TokenCounter::new(
            tiktoken_rs::cl100k_base().expect("the tokenizer"),
        )),
        faults,
    })
    .expect("the actors start")
}

/// Runs `body` inside an actix system, as the engine runs its actors.
pub fn in_actix<F: std::future::Future<Output = ()>>(body: F) {
    actix::System::new().block_on(body);
}
