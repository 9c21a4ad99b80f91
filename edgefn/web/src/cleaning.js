// The cleaning rules of edgefn/core/cleaning.py for the page: the run's training cleaning (edgefn_package.json's
// `cleaning`) applied to a text before it is tokenized. Each pattern is written to match what Python's `re`
// matches (tests/core/test_cleaning.py runs both on a list of tricky strings): Python's \s is the set WS below
// (JavaScript's \s differs), its \w is [\p{L}\p{N}_], its `$` also matches before a final newline, and with
// IGNORECASE its `i` also matches U+0130 and U+0131. Change a pattern here and in Python together.
const WS = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const W = '\\p{L}\\p{N}_';

const URL = new RegExp(`(?:https?://|www\\.)[^${WS}]+`, 'giu');
const HANDLE = new RegExp(`(?<![${W}@])@+[${W}]+(?:@+[${W}]+)*`, 'gu');
const HASHTAG = new RegExp(`(?<![${W}#])#([${W}]+)`, 'gu');
const REUTERS_DATELINE = new RegExp(`^.{0,250}?\\((?:Reuters)?\\)[${WS}]*[-\\u2013\\u2014][${WS}]*`, 'gsu');
const FEATURED_IMAGE = new RegExp(`[${WS}]*featured [i\\u0130\\u0131]mage.{0,200}(?=\\n?$)`, 'gisu');
const SPACES = new RegExp(`[${WS}]+`, 'gu');

// name -> [pattern, replacement] (null: spaces only), as RULES in edgefn/core/cleaning.py.
export const RULES = {
  urls: [URL, 'URL'],
  'drop-urls': [URL, ' '],
  handles: [HANDLE, '@USER'],
  'drop-handles': [HANDLE, ' '],
  hashtags: [HASHTAG, '$1'],
  reuters: [REUTERS_DATELINE, ''],
  'featured-image': [FEATURED_IMAGE, ''],
  whitespace: null,
};

// One text with `rules` applied in order, then spaces collapsed and stripped (no rules: unchanged). An unknown
// rule is an error: a page that cannot clean as the model was trained must not answer.
export function cleanText(text, rules) {
  if (!rules || rules.length === 0) return text;
  for (const name of rules) {
    if (!Object.hasOwn(RULES, name)) throw new Error(`unknown cleaning rule ${JSON.stringify(name)}`);
    const rule = RULES[name];
    if (rule) text = text.replace(rule[0], rule[1]);
  }
  return text.replace(SPACES, ' ').replace(/^ | $/g, '');
}
