//! Entities of a turn: names and multi-word proper nouns found from capitalisation, short
//! acronyms, and a few salient noun phrases ("pottery class") found next to verbs of
//! liking or doing.
//!
//! Everything is decided from the turn itself with small word lists, so it errs on the
//! side of precision: a capitalised word at the start of a sentence is only taken when
//! something else vouches for it, because English capitalises every sentence's first
//! word whether it is a name or not.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use mnemo_storage::graph::{name_key, EntityMention};

use super::keywords::{is_common, is_filler, is_stopword, lower, spans, Lexicon};

/// Never entities even when capitalised: time words (weekdays, months, holidays),
/// greetings and interjections, family words used as names ("Mom"), and honorifics,
/// which cue a person but are not part of the name.
static NEVER: Lexicon = Lexicon::words(
    "monday tuesday wednesday thursday friday saturday sunday
    january february march april may june july august september october november december
    today tomorrow yesterday tonight morning afternoon evening night weekend week month year
    christmas easter thanksgiving halloween hanukkah ramadan diwali birthday holiday holidays
    thanks thank hello hi hey yes no yeah yep ok okay sorry please congrats congratulations
    wow oh well sure great cool nice awesome lol haha omg wait anyway honestly maybe happy
    merry dear good bad god
    mom mum dad mother father mommy daddy mama papa grandma grandpa granny nana sis bro
    mr mrs ms dr prof sir madam",
);

/// Words right before a name that make it a person.
static PERSON_CUES: Lexicon = Lexicon::words(
    "friend friends bff sister brother sibling mom mum dad mother father boss wife husband
    partner girlfriend boyfriend son daughter cousin aunt uncle grandma grandpa grandmother
    grandfather coworker colleague roommate neighbor neighbour teacher doctor therapist
    fiance fiancee fiancé fiancée kid baby niece nephew manager mentor coach buddy pal
    with told tell telling met meet meeting named called texted asked saw thanked married
    marry dating invited hugged emailed
    mr mrs ms dr prof sir madam miss",
);

/// Words right after a name that make it a person ("Sarah said").
static PERSON_AFTER: Lexicon = Lexicon::words(
    "said says told asked texted called thinks thought wants wanted replied mentioned
    laughed suggested invited who",
);

/// Words right before a name that make it a place.
static PLACE_CUES: Lexicon = Lexicon::words(
    "in at to from visit visits visited visiting near around toward towards into across
    outside inside throughout",
);

/// Verbs whose capitalised object is a thing (a language, a game, a show), not a person.
static THING_CUES: Lexicon = Lexicon::words(
    "learning learn learned learnt studying study studied playing play played practicing
    practising watching watched reading read",
);

/// Words before "to" or "from" that make the name after it a person ("talked to Sarah",
/// "a gift from Sarah") rather than a destination or an origin.
static TO_FROM_PERSON: Lexicon = Lexicon::words(
    "talk talked talking spoke speak speaking said say wrote write writing sent send gave
    give given listen listened listening introduced married engaged close next reply
    replied explained mentioned text texted lent showed message messaged call called wave
    waved gift letter email card note present advice help hello hi",
);

/// Verbs whose object is worth remembering as a topic.
static TOPIC_CUES: Lexicon = Lexicon::words(
    "love loved loves loving hate hated hates like liked likes enjoy enjoyed enjoys enjoying
    started start starting starts began begin learning learn learned learnt play plays
    playing played visit visited visiting adopted adopt adopting joined join joining bought
    practicing practising practice studying study studied watching watched reading tried
    trying took taking collecting into",
);

/// Hobbies that are their own topic when a topic verb has no object ("I love reading").
static HOBBY_GERUNDS: Lexicon = Lexicon::words(
    "reading writing drawing painting cooking baking singing dancing swimming running hiking
    gardening knitting fishing camping climbing traveling travelling cycling surfing skiing
    skating sewing gaming studying collecting",
);

/// Words skipped between a topic verb and its object.
static DETERMINERS: Lexicon =
    Lexicon::words("a an the my our your his her their some this that these those more any");

/// Words a topic phrase must not end with: adjectives and adverbs that cannot stand for a
/// thing ("a new", "it so much").
static NOT_NOUNS: Lexicon = Lexicon::words(
    "good great nice bad new old big small little much many more most really very super
    awesome amazing cool hard easy late early again together alone already anymore back
    here there away fun lately",
);

/// Lower-case words that may sit inside a proper noun ("Bank of America", "Vincent van
/// Gogh").
static CONNECTORS: Lexicon =
    Lexicon::words("of the de del della der den di da du van von la le los las");

/// Last words that make a name an organisation.
static ORG_LAST: Lexicon = Lexicon::words(
    "inc corp corporation co ltd llc plc gmbh university college school academy institute
    company bank group labs lab foundation association society hospital clinic agency
    studio studios records press church airlines airways motors systems technologies
    partners holdings club",
);

/// First words that make a name an organisation ("University of Michigan").
static ORG_FIRST: Lexicon = Lexicon::words("university bank college institute department");

/// Last words that make a name a place.
static PLACE_LAST: Lexicon = Lexicon::words(
    "city park street st avenue ave road rd boulevard blvd lane lake beach island islands
    mountain mountains river bay valley county bridge airport station square canyon falls
    forest coast hills hill heights village town peak trail harbor harbour desert ocean sea
    province district gardens garden zoo plaza mall neighborhood shore cove creek glacier
    volcano reservoir pier",
);

/// First words that make a name a place ("Lake Tahoe", "Mount Fuji").
static PLACE_FIRST: Lexicon = Lexicon::words("lake mount mt fort ft port cape isle gulf st");

/// A small gazetteer of places people mention often, so "Paris" is not taken for a person.
static KNOWN_PLACES: Lexicon = Lexicon::phrases(
    "africa|asia|europe|antarctica|australia|america|north america|south america|
    united states|united kingdom|england|scotland|wales|ireland|france|germany|spain|italy|
    portugal|netherlands|belgium|switzerland|austria|sweden|norway|denmark|finland|iceland|
    poland|greece|turkey|russia|ukraine|china|japan|korea|south korea|india|pakistan|
    bangladesh|thailand|vietnam|indonesia|philippines|malaysia|singapore|israel|egypt|
    morocco|kenya|nigeria|ghana|ethiopia|south africa|canada|mexico|brazil|argentina|chile|
    peru|colombia|cuba|jamaica|new zealand|costa rica|puerto rico|iceland|
    alabama|alaska|arizona|arkansas|california|colorado|connecticut|delaware|florida|
    hawaii|idaho|illinois|indiana|iowa|kansas|kentucky|louisiana|maine|maryland|
    massachusetts|michigan|minnesota|mississippi|missouri|montana|nebraska|nevada|
    new hampshire|new jersey|new mexico|new york|north carolina|north dakota|ohio|oklahoma|
    oregon|pennsylvania|rhode island|south carolina|south dakota|tennessee|texas|utah|
    vermont|virginia|washington|west virginia|wisconsin|wyoming|
    london|paris|berlin|madrid|barcelona|rome|milan|venice|florence|amsterdam|brussels|
    vienna|prague|budapest|lisbon|dublin|edinburgh|stockholm|oslo|copenhagen|helsinki|
    athens|istanbul|moscow|kyiv|tokyo|kyoto|osaka|seoul|beijing|shanghai|hong kong|
    taipei|bangkok|hanoi|bali|mumbai|delhi|new delhi|dubai|cairo|nairobi|lagos|
    cape town|sydney|melbourne|auckland|toronto|vancouver|montreal|boston|chicago|
    seattle|portland|denver|austin|dallas|houston|miami|atlanta|phoenix|detroit|
    philadelphia|brooklyn|manhattan|queens|los angeles|san francisco|san diego|san jose|
    las vegas|new orleans|nashville|orlando|honolulu|mexico city|rio de janeiro|
    buenos aires|lima|bogota|havana|yosemite|tahoe|hawai'i",
);

/// Organisations people mention often whose names are ordinary words or look like first
/// names.
static KNOWN_ORGS: Lexicon = Lexicon::words(
    "google apple amazon microsoft netflix spotify youtube facebook instagram twitter tiktok
    reddit discord slack zoom whatsapp linkedin github openai tesla nike adidas ikea walmart
    costco starbucks uber lyft airbnb samsung sony nintendo disney pixar marvel",
);

/// Languages and nationalities: capitalised, not persons.
static LANGUAGES: Lexicon = Lexicon::words(
    "english spanish french german italian portuguese chinese mandarin cantonese japanese
    korean arabic hindi russian dutch swedish norwegian danish finnish greek hebrew turkish
    polish vietnamese thai latin american british canadian mexican indian australian irish
    scottish african european asian brazilian",
);

/// Acronyms that name places ("US" is otherwise the stopword "us").
static PLACE_ACRONYMS: Lexicon = Lexicon::words("us usa uk eu nyc la sf uae dc nz");

/// All-caps words that are chat or jargon, not organisations.
static ACRONYM_NOISE: Lexicon = Lexicon::words(
    "ok lol omg btw idk tbh imo fyi asap tv am pm id aka diy faq rsvp tldr wtf lmao brb ngl
    smh irl dm pls thx ty np gg af ftw fomo yolo ikr iirc jk ai ml ui ux api pdf url gps
    usb pc hr ceo cto cfo etc",
);

/// Abbreviations whose trailing period does not end a sentence.
static ABBREVIATIONS: Lexicon = Lexicon::words(
    "mr mrs ms dr prof st mt ft jr sr vs etc ave blvd rd inc corp ltd co dept gen col capt
    lt sgt rev hon",
);

/// Longest token considered, in chars: longer runs of letters are not names.
const MAX_TOKEN_CHARS: usize = 40;
/// Most words in one name; longer capitalised runs are titles or headings.
const MAX_NAME_WORDS: usize = 6;
/// Most bytes in one name, well under the graph's identifier limit.
const MAX_NAME_BYTES: usize = 120;
/// Most topics reported per turn: they are weaker evidence than names.
const MAX_TOPICS: usize = 3;
/// The kind of a lone capitalised word with no cue at all: a guess, which any cued
/// mention of the same name overrides.
const WEAK_PERSON: &str = "person?";
/// The kind of a lone capitalised first word vouched for but with no cue: weaker still.
const WEAK_NAME: &str = "name?";
/// Weight of a name mentioned once.
const NAME_WEIGHT: f64 = 1.0;
/// Weight of a topic mentioned once.
const TOPIC_WEIGHT: f64 = 0.6;
/// Weight added per repeated mention in the turn.
const REPEAT_BONUS: f64 = 0.2;
/// Highest weight of a mention.
const MAX_WEIGHT: f64 = 1.5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Starts with a capital and has lower-case letters ("Sarah", "McDonald").
    Cap,
    /// Two or more letters, all capitals ("NASA", "LOVE").
    Caps,
    /// Starts lower case.
    Lower,
    /// Digits, uncased scripts, overly long tokens, "ATMs".
    Other,
}

/// What separates a token from the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gap {
    /// Only spaces: a name may continue.
    Space,
    /// A bare hyphen: "Coca-Cola".
    Hyphen,
    /// The period of an abbreviation or an initial: "St. Louis", "J. K. Rowling".
    Dot,
    /// Other punctuation: a comma, a quote, a bracket.
    Break,
    /// The end of a sentence or a line (also the start of the text).
    Sentence,
}

struct Tok<'a> {
    /// The word, without a possessive "'s".
    text: &'a str,
    lower: Cow<'a, str>,
    start: usize,
    end: usize,
    shape: Shape,
    possessive: bool,
    gap: Gap,
    sentence: usize,
    /// First word of its sentence.
    initial: bool,
    /// Its sentence is shouted (mostly all caps), so capitals mean nothing there.
    shouted: bool,
}

impl Tok<'_> {
    fn lower(&self) -> &str {
        &self.lower
    }

    fn is_single_letter(&self) -> bool {
        let mut chars = self.text.chars();
        chars.next().is_some() && chars.next().is_none()
    }
}

fn shape_of(word: &str) -> Shape {
    let Some(first) = word.chars().next() else {
        return Shape::Other;
    };
    if word.chars().nth(MAX_TOKEN_CHARS).is_some() {
        return Shape::Other;
    }
    let letters = word.chars().filter(|c| c.is_alphabetic()).count();
    let lowers = word.chars().filter(|c| c.is_lowercase()).count();
    if first.is_uppercase() {
        if lowers == 0 && letters >= 2 {
            Shape::Caps
        } else if lowers == 1 && letters >= 3 && word.ends_with('s') {
            // Plural acronyms ("ATMs"): neither a name nor a clean acronym.
            Shape::Other
        } else {
            Shape::Cap
        }
    } else if first.is_lowercase() {
        Shape::Lower
    } else {
        Shape::Other
    }
}

/// Splits off a possessive "'s", which is not part of the name ("Sarah's" -> "Sarah").
fn strip_possessive(word: &str) -> (&str, bool) {
    for suffix in ["'s", "'S", "\u{2019}s", "\u{2019}S"] {
        if let Some(core) = word.strip_suffix(suffix) {
            if !core.is_empty() {
                return (core, true);
            }
        }
    }
    (word, false)
}

fn is_sentence_mark(c: char) -> bool {
    match c {
        '.' | '!' | '?' | ':' | '\u{2026}' | '\u{3002}' | '\u{ff01}' | '\u{ff1f}' => true,
        // Quotes and dashes separate words but not sentences.
        '\u{2018}' | '\u{2019}' | '\u{201c}' | '\u{201d}' | '\u{00ab}' | '\u{00bb}'
        | '\u{2013}' | '\u{2014}' => false,
        // Chat uses emoji and other symbols as full stops.
        c => !c.is_ascii() && !c.is_whitespace(),
    }
}

fn classify_gap(gap: &str, prev: &Tok<'_>) -> Gap {
    if gap.contains(['\n', '\r']) {
        return Gap::Sentence;
    }
    let trimmed = gap.trim();
    if trimmed.is_empty() {
        return Gap::Space;
    }
    if gap == "-" {
        return Gap::Hyphen;
    }
    if trimmed == "." && gap.starts_with('.') && !prev.possessive {
        let abbreviation = (prev.is_single_letter() && prev.shape == Shape::Cap)
            || ABBREVIATIONS.contains(prev.lower());
        if abbreviation {
            return Gap::Dot;
        }
    }
    if trimmed.chars().any(is_sentence_mark) {
        Gap::Sentence
    } else {
        Gap::Break
    }
}

fn tokenize(text: &str) -> Vec<Tok<'_>> {
    let mut toks: Vec<Tok<'_>> = Vec::new();
    let mut prev_end = 0;
    let mut sentence = 0;
    for (start, end) in spans(text) {
        let (word, possessive) = strip_possessive(&text[start..end]);
        let gap = match toks.last() {
            None => Gap::Sentence,
            Some(prev) => classify_gap(&text[prev_end..start], prev),
        };
        if gap == Gap::Sentence && !toks.is_empty() {
            sentence += 1;
        }
        toks.push(Tok {
            text: word,
            lower: lower(word),
            start,
            end: start + word.len(),
            shape: shape_of(word),
            possessive,
            gap,
            sentence,
            initial: gap == Gap::Sentence,
            shouted: false,
        });
        prev_end = end;
    }
    mark_shouting(&mut toks);
    toks
}

/// Flags sentences written mostly in capitals, where all-caps words are emphasis rather
/// than acronyms.
fn mark_shouting(toks: &mut [Tok<'_>]) {
    let mut from = 0;
    while from < toks.len() {
        let sentence = toks[from].sentence;
        let to = toks[from..]
            .iter()
            .position(|t| t.sentence != sentence)
            .map_or(toks.len(), |n| from + n);
        let words = toks[from..to].iter().filter(|t| {
            t.text
                .chars()
                .filter(|c| c.is_alphabetic())
                .nth(1)
                .is_some()
        });
        let (mut total, mut caps) = (0usize, 0usize);
        for t in words {
            total += 1;
            caps += usize::from(t.shape == Shape::Caps);
        }
        if caps >= 3 && caps * 5 >= total * 3 {
            for t in &mut toks[from..to] {
                t.shouted = true;
            }
        }
        from = to;
    }
}

/// Words that never start or continue a name.
fn never_entity(lower: &str) -> bool {
    is_stopword(lower) || NEVER.contains(lower) || is_filler(lower)
}

/// Capitalised words that, at the start of a sentence, are most likely just capitalised
/// common words ("Went", "Loved", "Honestly", "New").
fn weak_initial(lower: &str) -> bool {
    never_entity(lower) || cue_word(lower) || is_common(lower) || adverb_or_gerund(lower)
}

fn cue_word(lower: &str) -> bool {
    PERSON_CUES.contains(lower) || PLACE_CUES.contains(lower) || TOPIC_CUES.contains(lower)
}

fn adverb_or_gerund(lower: &str) -> bool {
    lower.len() > 4 && (lower.ends_with("ly") || lower.ends_with("ing"))
}

/// A short all-caps word that stands for something ("NASA", "UCLA", "UK").
fn is_acronym(t: &Tok<'_>) -> bool {
    if t.shape != Shape::Caps || t.shouted {
        return false;
    }
    let letters = t.text.chars().count();
    if !(2..=6).contains(&letters) || !t.text.chars().all(char::is_alphabetic) {
        return false;
    }
    let l = t.lower();
    PLACE_ACRONYMS.contains(l)
        || !(never_entity(l) || is_common(l) || ACRONYM_NOISE.contains(l) || cue_word(l))
}

/// Whether a token can be a word of a name.
fn name_word(toks: &[Tok<'_>], i: usize) -> bool {
    let t = &toks[i];
    match t.shape {
        Shape::Caps => is_acronym(t),
        Shape::Cap if t.shouted => false,
        // A lone capital letter is only part of a name as an initial ("J. K."); checked
        // before the word lists, where "k" is chat for "ok".
        Shape::Cap if t.is_single_letter() => {
            t.text != "I" && toks.get(i + 1).is_some_and(|n| n.gap == Gap::Dot)
        }
        Shape::Cap => !never_entity(t.lower()),
        _ => false,
    }
}

/// The end (inclusive) of the name starting at `i`.
fn extend_run(toks: &[Tok<'_>], i: usize) -> usize {
    let mut last = i;
    while !toks[last].possessive {
        let mut next = last + 1;
        let mut connectors = 0;
        while connectors < 2
            && toks.get(next).is_some_and(|t| {
                t.gap == Gap::Space && t.shape == Shape::Lower && CONNECTORS.contains(t.lower())
            })
        {
            next += 1;
            connectors += 1;
        }
        let Some(n) = toks.get(next) else { break };
        let joined = match n.gap {
            Gap::Space => true,
            Gap::Hyphen => connectors == 0,
            // Only initials and place abbreviations carry on past their period:
            // "Dr. Smith" is a cue and a name, "St. Louis" is one name.
            Gap::Dot => {
                let prev = &toks[last];
                connectors == 0
                    && (prev.is_single_letter() || matches!(prev.lower(), "st" | "mt" | "ft"))
            }
            Gap::Break | Gap::Sentence => false,
        };
        if !joined || !name_word(toks, next) {
            break;
        }
        last = next;
    }
    last
}

/// The two words before token `i` in its sentence, nearest first, skipping articles.
fn words_before<'t>(toks: &'t [Tok<'_>], i: usize) -> (Option<&'t str>, Option<&'t str>) {
    let sentence = toks[i].sentence;
    let mut found = toks[..i]
        .iter()
        .rev()
        .take_while(|t| t.sentence == sentence)
        .map(Tok::lower)
        .filter(|w| !matches!(*w, "the" | "a" | "an"));
    (found.next(), found.next())
}

/// A name or topic found in the turn, before merging.
struct Found {
    name: String,
    key: String,
    kind: &'static str,
    /// Where it first appears, for output order.
    order: usize,
    count: u32,
    /// The first name, for persons named in full.
    alias: Option<String>,
}

/// How much a kind says: a later mention with a more telling kind wins the merge.
fn specificity(kind: &str) -> u8 {
    match kind {
        "topic" => 0,
        WEAK_NAME => 1,
        WEAK_PERSON => 2,
        "name" => 3,
        _ => 4,
    }
}

/// Collapses whitespace (tabs, newlines) so names are clean identifiers.
fn clean(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn classify(toks: &[Tok<'_>], from: usize, to: usize, key: &str) -> &'static str {
    let first = toks[from].lower();
    let last = toks[to].lower();
    let multi = to > from;
    if !multi && is_acronym(&toks[from]) {
        return if PLACE_ACRONYMS.contains(first) {
            "place"
        } else {
            "org"
        };
    }
    if KNOWN_ORGS.contains(key) || (multi && (ORG_LAST.contains(last) || ORG_FIRST.contains(first)))
    {
        return "org";
    }
    if KNOWN_PLACES.contains(key)
        || (multi && (PLACE_LAST.contains(last) || PLACE_FIRST.contains(first)))
    {
        return "place";
    }
    if LANGUAGES.contains(key) {
        return "name";
    }
    let (before, before2) = words_before(toks, from);
    let after = toks
        .get(to + 1)
        .filter(|t| matches!(t.gap, Gap::Space | Gap::Break))
        .map(Tok::lower);
    if before.is_some_and(|w| PERSON_CUES.contains(w))
        || after.is_some_and(|w| PERSON_AFTER.contains(w))
    {
        return "person";
    }
    if toks[to].possessive && !multi {
        // "Sarah's": places and organisations were recognised above.
        return "person";
    }
    if let Some(cue) = before.filter(|w| PLACE_CUES.contains(w)) {
        if matches!(cue, "to" | "from") && before2.is_some_and(|w| TO_FROM_PERSON.contains(w)) {
            return "person";
        }
        // "coffee at Blue Bottle": a multi-word name after "at" is usually a venue or a
        // business, not a place to file under geography.
        if cue == "at" && multi {
            return "name";
        }
        return "place";
    }
    if before.is_some_and(|w| THING_CUES.contains(w)) {
        // "learning Rust", "playing Catan": things, not people.
        return "name";
    }
    if multi {
        "name"
    } else if toks[from].initial {
        WEAK_NAME
    } else {
        WEAK_PERSON
    }
}

fn find_names(toks: &[Tok<'_>], text: &str, found: &mut Vec<Found>) {
    // Capitalised words seen mid-sentence: they vouch for the same word at a sentence start.
    let mid_sentence: HashSet<&str> = toks
        .iter()
        .filter(|t| !t.initial && t.shape == Shape::Cap)
        .map(Tok::lower)
        .collect();
    let mut i = 0;
    while i < toks.len() {
        if !name_word(toks, i) {
            i += 1;
            continue;
        }
        let mut from = i;
        let to = extend_run(toks, i);
        i = to + 1;
        let key_of = |from: usize| name_key(&clean(&text[toks[from].start..toks[to].end]));
        if toks[from].initial && weak_initial(toks[from].lower()) {
            // "Met Sarah" -> "Sarah", but "New York City" stays whole: a common first word
            // is kept when the whole is a known place or ends like one.
            let l = toks[from].lower();
            let keep = to > from && !never_entity(l) && !cue_word(l) && !adverb_or_gerund(l) && {
                let key = key_of(from);
                let last = toks[to].lower();
                KNOWN_PLACES.contains(&key)
                    || KNOWN_ORGS.contains(&key)
                    || PLACE_LAST.contains(last)
                    || ORG_LAST.contains(last)
            };
            if !keep {
                from += 1;
                // A dropped first word may have been followed by a connector ("Visited
                // of"), which cannot start a name.
                while from <= to && !name_word(toks, from) {
                    from += 1;
                }
                if from > to {
                    continue;
                }
            }
        }
        // Too long for a name, or initials with no name after them.
        if to + 1 - from > MAX_NAME_WORDS || toks[from..=to].iter().all(Tok::is_single_letter) {
            continue;
        }
        let name = clean(&text[toks[from].start..toks[to].end]);
        let key = name_key(&name);
        if name.is_empty() || name.len() > MAX_NAME_BYTES {
            continue;
        }
        if from == to && toks[from].initial && toks[from].shape == Shape::Cap {
            // A lone capitalised first word needs a witness: the same word capitalised
            // mid-sentence, a possessive, a verb of speech after it, or a gazetteer.
            let l = toks[from].lower();
            let vouched = mid_sentence.contains(l)
                || (toks[from].possessive && !weak_initial(l))
                || toks
                    .get(from + 1)
                    .is_some_and(|n| n.gap == Gap::Space && PERSON_AFTER.contains(n.lower()))
                || KNOWN_PLACES.contains(&key)
                || KNOWN_ORGS.contains(&key);
            if !vouched {
                continue;
            }
        }
        let kind = classify(toks, from, to, &key);
        let alias = (matches!(kind, "person" | WEAK_PERSON)
            && to > from
            && toks[from..=to].iter().all(|t| t.shape == Shape::Cap))
        .then(|| toks[from].text.to_string())
        .filter(|a| !a.is_empty());
        found.push(Found {
            name,
            key,
            kind,
            order: from,
            count: 1,
            alias,
        });
    }
}

/// A word that may be part of a topic phrase.
fn topic_word(t: &Tok<'_>) -> bool {
    let l = t.lower();
    let chars = l.chars().count();
    t.shape == Shape::Lower
        && (3..=24).contains(&chars)
        && l.chars().all(char::is_alphabetic)
        && !never_entity(l)
        && !cue_word(l)
}

fn nounish(lower: &str) -> bool {
    !NOT_NOUNS.contains(lower)
        && !(lower.len() > 4 && (lower.ends_with("ly") || lower.ends_with("ed")))
}

fn find_topics(toks: &[Tok<'_>], text: &str, found: &mut Vec<Found>) {
    let same = |a: usize, b: usize| toks[a].sentence == toks[b].sentence;
    let mut i = 0;
    while i < toks.len() {
        if !TOPIC_CUES.contains(toks[i].lower()) {
            i += 1;
            continue;
        }
        // "started learning pottery": the last verb of a chain governs the object.
        let first_cue = i;
        let mut cue = i;
        while cue + 1 < toks.len()
            && same(i, cue + 1)
            && toks[cue + 1].gap == Gap::Space
            && TOPIC_CUES.contains(toks[cue + 1].lower())
        {
            cue += 1;
        }
        let mut start = cue + 1;
        let mut skipped = 0;
        while skipped < 2
            && start < toks.len()
            && same(i, start)
            && toks[start].gap == Gap::Space
            && DETERMINERS.contains(toks[start].lower())
        {
            start += 1;
            skipped += 1;
        }
        let mut end = start;
        while end < toks.len()
            && end - start < 3
            && same(i, end)
            && (toks[end].gap == Gap::Space || (end > start && toks[end].gap == Gap::Hyphen))
            && topic_word(&toks[end])
        {
            end += 1;
        }
        while end > start && !nounish(toks[end - 1].lower()) {
            end -= 1;
        }
        i = cue + 1;
        let hobby = end == start
            && cue > first_cue
            && skipped == 0
            && HOBBY_GERUNDS.contains(toks[cue].lower());
        let (from, to) = if end > start {
            (start, end - 1)
        } else if hobby {
            (cue, cue)
        } else {
            continue;
        };
        let name = clean(&text[toks[from].start..toks[to].end]);
        // A lone common word ("the day", "my job") is not worth a graph node.
        if name.is_empty() || (!hobby && from == to && is_common(toks[from].lower())) {
            continue;
        }
        found.push(Found {
            key: name_key(&name),
            name,
            kind: "topic",
            order: from,
            count: 1,
            alias: None,
        });
        i = to + 1;
    }
}

/// How often the words of `key` occur in a row in the turn, at least once.
fn occurrences(toks: &[Tok<'_>], key: &str) -> u32 {
    let words: Vec<&str> = key.split([' ', '-']).filter(|w| !w.is_empty()).collect();
    if words.is_empty() || words.len() > toks.len() {
        return 1;
    }
    let n = toks
        .windows(words.len())
        .filter(|w| w.iter().zip(&words).all(|(t, k)| t.lower() == *k))
        .count();
    u32::try_from(n).unwrap_or(u32::MAX).max(1)
}

/// The entities a turn mentions, in order of first appearance: persons, places,
/// organisations and other names (weight 1.0), and up to three topics (weight 0.6), each
/// +0.2 per repeat in the turn, at most 1.5. Names are deduplicated by
/// [`name_key`] keeping the first spelling; a person named in full ("Sarah Connor") gets
/// the first name as an alias and absorbs later mentions of it. Never panics; returns an
/// empty list for text without names.
pub fn extract_entities(text: &str) -> Vec<EntityMention> {
    let toks = tokenize(text);
    let mut found = Vec::new();
    find_names(&toks, text, &mut found);
    let names = found.len();
    find_topics(&toks, text, &mut found);
    // A name and a topic that coincide are one entity; topics found first stay topics
    // only if no name claims them.
    let mut merged: Vec<Found> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut topics = 0;
    for (n, f) in found.into_iter().enumerate() {
        if let Some(&at) = index.get(&f.key) {
            let m = &mut merged[at];
            m.count += 1;
            m.order = m.order.min(f.order);
            if specificity(f.kind) > specificity(m.kind) {
                m.kind = f.kind;
            }
            if m.alias.is_none() {
                m.alias = f.alias;
            }
            continue;
        }
        if n >= names {
            if topics == MAX_TOPICS {
                continue;
            }
            topics += 1;
        }
        index.insert(f.key.clone(), merged.len());
        merged.push(f);
    }
    // "Sarah" after "Sarah Connor" is the same person.
    let mut absorbed = vec![false; merged.len()];
    for p in 0..merged.len() {
        let Some(alias) = merged[p].alias.as_deref().map(name_key) else {
            continue;
        };
        let Some(&s) = index.get(&alias) else {
            continue;
        };
        if s != p
            && !absorbed[s]
            && matches!(merged[s].kind, "person" | WEAK_PERSON | "name" | WEAK_NAME)
        {
            absorbed[s] = true;
            let (count, order) = (merged[s].count, merged[s].order);
            merged[p].count += count;
            merged[p].order = merged[p].order.min(order);
        }
    }
    let mut out: Vec<(usize, EntityMention)> = merged
        .into_iter()
        .zip(absorbed)
        .filter(|(_, gone)| !gone)
        .map(|(f, _)| {
            let (base, count) = if f.kind == "topic" {
                (TOPIC_WEIGHT, occurrences(&toks, &f.key).max(f.count))
            } else {
                (NAME_WEIGHT, f.count)
            };
            let repeats = f64::from(count.saturating_sub(1));
            let kind = match f.kind {
                WEAK_PERSON => "person",
                WEAK_NAME => "name",
                kind => kind,
            };
            let mention = EntityMention {
                name: f.name,
                kind: kind.to_string(),
                aliases: f.alias.into_iter().collect(),
                weight: (base + REPEAT_BONUS * repeats).min(MAX_WEIGHT),
            };
            (f.order, mention)
        })
        .collect();
    out.sort_by_key(|(order, _)| *order);
    out.into_iter().map(|(_, m)| m).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(found: &'a [EntityMention], name: &str) -> Option<&'a EntityMention> {
        found.iter().find(|e| e.name == name)
    }

    /// Names start and end with a letter or digit: punctuation is trimmed.
    fn is_name_edge(c: char) -> bool {
        c.is_alphanumeric()
    }

    fn names(found: &[EntityMention]) -> Vec<&str> {
        found.iter().map(|e| e.name.as_str()).collect()
    }

    #[test]
    fn the_hiking_example() {
        let got = extract_entities(
            "Yesterday I went hiking with Sarah Connor at Yosemite National Park and then \
             we got coffee at Blue Bottle.",
        );
        let sarah = find(&got, "Sarah Connor").expect("Sarah Connor");
        assert_eq!(sarah.kind, "person");
        assert_eq!(sarah.aliases, vec!["Sarah".to_string()]);
        assert_eq!(sarah.weight, 1.0);
        assert_eq!(
            find(&got, "Yosemite National Park").map(|e| e.kind.as_str()),
            Some("place")
        );
        let bottle = find(&got, "Blue Bottle").expect("Blue Bottle");
        assert!(matches!(bottle.kind.as_str(), "name" | "org"), "{bottle:?}");
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(
            names(&got),
            vec!["Sarah Connor", "Yosemite National Park", "Blue Bottle"]
        );
    }

    #[test]
    fn sentence_initial_common_words_are_skipped() {
        let got = extract_entities(
            "Thanks! The weather was nice. Monday we talked. My plan is simple. I agree.",
        );
        assert!(got.is_empty(), "{got:?}");
        let got = extract_entities("Met Sarah at the gym. Visited Golden Gate Park on Sunday.");
        assert_eq!(names(&got), vec!["Sarah", "Golden Gate Park"], "{got:?}");
        assert_eq!(got[0].kind, "person");
        assert_eq!(got[1].kind, "place");
    }

    #[test]
    fn a_lone_first_word_needs_a_witness() {
        assert!(extract_entities("Pottery is fun.").is_empty());
        let got = extract_entities("Paris was lovely.");
        assert_eq!(names(&got), vec!["Paris"]);
        assert_eq!(got[0].kind, "place");
        let got = extract_entities("Miso is my cat. I love Miso.");
        assert_eq!(names(&got), vec!["Miso"]);
        assert!((got[0].weight - 1.2).abs() < 1e-9, "{got:?}");
        // A cue-less guess from a sentence start gives way to a mid-sentence one.
        let got =
            extract_entities("My dog Biscuit loves the beach. Biscuit is a golden retriever.");
        let biscuit = find(&got, "Biscuit").expect("Biscuit");
        assert_eq!(biscuit.kind, "person");
        assert!((biscuit.weight - 1.2).abs() < 1e-9, "{got:?}");
        let got = extract_entities("Tom said he would come.");
        assert_eq!(got.first().map(|e| e.kind.as_str()), Some("person"));
    }

    #[test]
    fn possessives_are_stripped() {
        let got = extract_entities("We stayed at Sarah's place and borrowed Tom’s car.");
        assert_eq!(names(&got), vec!["Sarah", "Tom"]);
        assert!(got.iter().all(|e| e.kind == "person"), "{got:?}");
        let got = extract_entities("Sarah's dog barked.");
        assert_eq!(names(&got), vec!["Sarah"]);
    }

    #[test]
    fn acronyms_but_not_shouting() {
        let got = extract_entities("My cousin works at NASA and studied at UCLA.");
        assert_eq!(names(&got), vec!["NASA", "UCLA"]);
        assert!(got.iter().all(|e| e.kind == "org"), "{got:?}");
        assert!(extract_entities("THIS IS SO GOOD I CANNOT BELIEVE IT").is_empty());
        assert!(extract_entities("LOL OK thanks").is_empty());
        let got = extract_entities("We moved to the UK last year.");
        assert_eq!(
            got.first().map(|e| (e.name.as_str(), e.kind.as_str())),
            Some(("UK", "place"))
        );
        // Too long for an acronym.
        assert!(extract_entities("the word is ABCDEFGH here").is_empty());
    }

    #[test]
    fn kinds_from_cues_and_suffixes() {
        let got = extract_entities(
            "I opened an account at Bank of America, then flew to New York City to see my \
             sister Emma, and I talked to Priya about Acme Corp.",
        );
        let kind = |n: &str| find(&got, n).map(|e| e.kind.as_str());
        assert_eq!(kind("Bank of America"), Some("org"), "{got:?}");
        assert_eq!(kind("New York City"), Some("place"), "{got:?}");
        assert_eq!(kind("Emma"), Some("person"), "{got:?}");
        assert_eq!(kind("Priya"), Some("person"), "{got:?}");
        assert_eq!(kind("Acme Corp"), Some("org"), "{got:?}");
        let got = extract_entities("Python or Rust? I started learning Rust last month.");
        assert_eq!(
            find(&got, "Rust").map(|e| e.kind.as_str()),
            Some("name"),
            "{got:?}"
        );
        let got = extract_entities("We watched The Lord of the Rings with Mike.");
        assert_eq!(names(&got), vec!["Lord of the Rings", "Mike"], "{got:?}");
        let got = extract_entities("We drove from Denver to Lake Tahoe and I'm learning Spanish.");
        let kind = |n: &str| find(&got, n).map(|e| e.kind.as_str());
        assert_eq!(kind("Denver"), Some("place"));
        assert_eq!(kind("Lake Tahoe"), Some("place"));
        assert_eq!(kind("Spanish"), Some("name"));
    }

    #[test]
    fn first_names_merge_into_full_names_and_duplicates_collapse() {
        let got = extract_entities(
            "I met Sarah Connor today. Later sarah connor called, and Sarah said hi.",
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].name, "Sarah Connor");
        assert_eq!(got[0].aliases, vec!["Sarah".to_string()]);
        assert!((got[0].weight - 1.2).abs() < 1e-9, "{got:?}");
        let many = "I saw Bob. ".repeat(10);
        let got = extract_entities(&many);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].weight, MAX_WEIGHT);
    }

    #[test]
    fn lowercase_text_gives_topics_only() {
        let got = extract_entities(
            "i went hiking with sarah yesterday and honestly i love pottery class. \
             also i adopted a golden retriever named miso and started marathon training",
        );
        assert!(got.iter().all(|e| e.kind == "topic"), "{got:?}");
        assert_eq!(
            names(&got),
            vec!["pottery class", "golden retriever", "marathon training"]
        );
        assert!(got.iter().all(|e| (e.weight - 0.6).abs() < 1e-9), "{got:?}");
    }

    #[test]
    fn topics_are_few_precise_and_weighted_by_repeats() {
        let got = extract_entities("I love pottery. Pottery is calming, I enjoy it so much.");
        assert_eq!(names(&got), vec!["pottery"]);
        assert!((got[0].weight - 0.8).abs() < 1e-9, "{got:?}");
        for text in [
            "I love it",
            "I like to swim",
            "I enjoyed the day",
            "I hate that",
        ] {
            assert!(
                extract_entities(text).is_empty(),
                "{text}: {:?}",
                extract_entities(text)
            );
        }
        let got = extract_entities("I love reading. I started learning chess.");
        assert_eq!(names(&got), vec!["reading", "chess"]);
        let got = extract_entities(
            "I love tennis, I like chess, I enjoy poetry, I play guitar, I watched anime",
        );
        assert_eq!(got.len(), MAX_TOPICS, "{got:?}");
    }

    #[test]
    fn names_are_trimmed_and_clean() {
        let got = extract_entities(
            "\"Golden Gate Bridge\"!! (with Mary-Jane Watson)... at St. Louis\tCity, by J. K. Rowling",
        );
        for e in &got {
            assert!(!e.name.is_empty());
            assert!(e.name.chars().next().is_some_and(is_name_edge), "{e:?}");
            assert!(e.name.chars().last().is_some_and(is_name_edge), "{e:?}");
            assert!(!e.name.chars().any(char::is_control), "{e:?}");
            assert!(e.weight > 0.0 && e.weight <= MAX_WEIGHT);
        }
        assert!(find(&got, "Golden Gate Bridge").is_some(), "{got:?}");
        assert!(find(&got, "Mary-Jane Watson").is_some(), "{got:?}");
        assert!(find(&got, "St. Louis City").is_some(), "{got:?}");
        assert!(find(&got, "J. K. Rowling").is_some(), "{got:?}");
    }

    #[test]
    fn adversarial_inputs_do_not_panic() {
        let long = "Sarah went to Paris and loved pottery class. ".repeat(250);
        let caps = "A".repeat(10_000);
        let inputs = [
            "",
            "''''",
            "...!!!???",
            "😀🎉 Sarah 😀 NASA 🎉",
            "東京タワーに行きました。とても楽しかった！",
            "ذهبت إلى القاهرة مع سارة",
            "\u{202e}Evil\u{202c} Ünïcödé Ärzte Österreich",
            "I'm 's 's' Sarah' 'Tom",
            "-- - -Sarah- Bob-",
            "St. . . Mt. J.",
            "\u{0}\u{7}Bob\u{0}",
            long.as_str(),
            caps.as_str(),
        ];
        for text in inputs {
            for e in extract_entities(text) {
                assert!(!e.name.trim().is_empty(), "{text:?}: {e:?}");
                assert!(e.name.len() <= MAX_NAME_BYTES);
                assert!(!e.name.chars().any(char::is_control), "{e:?}");
                assert!(e.weight.is_finite() && e.weight > 0.0);
                let kinds = ["person", "place", "org", "name", "topic"];
                assert!(kinds.contains(&e.kind.as_str()), "{e:?}");
            }
        }
        assert!(extract_entities(&caps).is_empty());
    }

    #[test]
    fn deterministic() {
        let text = "My friend Ana and Bob visited Lisbon, then Ana's brother joined NASA.";
        assert_eq!(extract_entities(text), extract_entities(text));
    }
}
