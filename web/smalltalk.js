// What the page says to small talk ("hi", "who are you?"): what it can be asked about, naming a few documents,
// in the question's language where a small table has it (judged by the question's script, else the browser's
// language), else in English. Slack says the same (qa/slack_render.py).

const SHOWN_TITLES = 3;

// The count is in parentheses so that no language needs plural rules; English reads as the issue words it.
const ASK_ME = {
  ru: "Спросите меня о документах ({count}): {titles}",
  de: "Fragen Sie mich zu den Dokumenten ({count}): {titles}",
  fr: "Posez-moi une question sur les documents ({count}) : {titles}",
  es: "Pregúntame sobre los documentos ({count}): {titles}",
  el: "Ρωτήστε με για τα έγγραφα ({count}): {titles}",
  zh: "请问我关于这些文档的问题（{count}）：{titles}",
  hi: "मुझसे दस्तावेज़ों ({count}) के बारे में पूछिए: {titles}",
  ar: "اسألني عن المستندات ({count}): {titles}",
  th: "ถามฉันเกี่ยวกับเอกสาร ({count}): {titles}",
};
const EMPTY = "Ask me a question about the documents.";

const SCRIPTS = [
  [/\p{Script=Cyrillic}/u, "ru"],
  [/\p{Script=Greek}/u, "el"],
  [/\p{Script=Han}/u, "zh"],
  [/\p{Script=Thai}/u, "th"],
];
// scripts that several languages write (Hindi and Marathi, Arabic and Urdu): the browser's language decides
const SHARED_SCRIPTS = [
  [/\p{Script=Devanagari}/u, "hi"],
  [/\p{Script=Arabic}/u, "ar"],
];

// languages told by their script, never by the browser's language alone (a Latin-script question is not theirs)
const SCRIPT_CODES = [...SCRIPTS, ...SHARED_SCRIPTS].map(([, code]) => code);

/** The language to answer in: the question's script where it decides, else the browser's language. */
export function replyLanguage(question, browserLanguages = navigator.languages || [navigator.language]) {
  for (const [pattern, code] of SCRIPTS) if (pattern.test(question)) return code;
  const codes = browserLanguages.map((tag) => String(tag || "").toLowerCase().split("-")[0]);
  for (const [pattern, code] of SHARED_SCRIPTS) if (pattern.test(question)) return codes.includes(code) ? code : "en";
  if (/\p{Script=Latin}/u.test(question)) {
    for (const code of codes) {
      if (code === "en" || (code in ASK_ME && !SCRIPT_CODES.includes(code))) return code;
    }
  }
  return "en";
}

/** "Ask me about the 12 documents: A, B, C…" in the reply language. */
export function smallTalkText(question, total, titles) {
  if (!total) return EMPTY;
  const shown = titles.slice(0, SHOWN_TITLES);
  const list = shown.join(", ") + (total > shown.length ? "…" : "");
  const language = replyLanguage(question);
  if (language in ASK_ME) return ASK_ME[language].replace("{count}", String(total)).replace("{titles}", list);
  return total === 1 ? `Ask me about the document: ${list}` : `Ask me about the ${total} documents: ${list}`;
}
