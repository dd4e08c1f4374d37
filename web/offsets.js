// The API's offsets count Unicode code points (Python's str); a JavaScript string counts UTF-16 units, in which a
// character outside the BMP (an emoji, CJK Extension B such as 𠀋) takes two. Every slice at an API offset goes
// through here: sliced as it comes, the mark moves one unit left of its sentence after each such character.

const SURROGATE = /[\uD800-\uDFFF]/;

/** The UTF-16 index in ``text`` of each code-point offset, clamped to the text; one pass whatever their order. */
export function unitIndexes(text, offsets) {
  const points = offsets.map((n) => Math.max(0, Number(n) || 0));
  if (!SURROGATE.test(text)) return points.map((n) => Math.min(text.length, n)); // one unit a code point
  const order = points.map((n, i) => [n, i]).sort((a, b) => a[0] - b[0]);
  const found = new Array(points.length);
  let unit = 0;
  let point = 0;
  for (const [n, i] of order) {
    for (; point < n && unit < text.length; point += 1) {
      const high = text.charCodeAt(unit) & 0xfc00;
      unit += high === 0xd800 && (text.charCodeAt(unit + 1) & 0xfc00) === 0xdc00 ? 2 : 1; // a pair is one point
    }
    found[i] = unit;
  }
  return found;
}

/** ``text`` from code point ``start`` to code point ``end``: Python's ``text[start:end]``. */
export function slicePoints(text, start, end) {
  const [from, to] = unitIndexes(text, [start, end]);
  return text.slice(from, to);
}
