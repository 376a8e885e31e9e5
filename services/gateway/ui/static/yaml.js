// A group spec as YAML, and a line diff of two texts: what the group page shows for a spec and
// between two versions. Small on purpose (the page has no library): the YAML is the block style
// `bay apply` reads back, strings quoted whenever a plain scalar could read as something else.

const PLAIN = /^[A-Za-z0-9_./][A-Za-z0-9_./ @:+-]*$/;
const SPECIAL = /^(true|false|yes|no|on|off|null|~|[-+]?[0-9.]+([eE][-+]?[0-9]+)?)$/i;

function scalar(value) {
  if (value === null || value === undefined) return "null";
  if (typeof value === "boolean" || typeof value === "number") return String(value);
  const text = String(value);
  if (text !== "" && PLAIN.test(text) && !SPECIAL.test(text) && !text.endsWith(" ") && !text.includes(": ")) {
    return text;
  }
  return JSON.stringify(text); // a JSON string is a valid YAML double-quoted scalar
}

function isEmpty(value) {
  return (
    (Array.isArray(value) && value.length === 0) ||
    (value !== null && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length === 0)
  );
}

function lines(value, indent, out) {
  const pad = "  ".repeat(indent);
  if (Array.isArray(value)) {
    for (const item of value) {
      if (item !== null && typeof item === "object" && !isEmpty(item)) {
        const inner = [];
        lines(item, indent + 1, inner);
        out.push(`${pad}- ${inner[0].trimStart()}`, ...inner.slice(1));
      } else {
        out.push(`${pad}- ${isEmpty(item) ? JSON.stringify(item) : scalar(item)}`);
      }
    }
    return;
  }
  for (const [key, item] of Object.entries(value)) {
    const name = scalar(key);
    if (item !== null && typeof item === "object" && !isEmpty(item)) {
      out.push(`${pad}${name}:`);
      lines(item, Array.isArray(item) ? indent : indent + 1, out);
    } else {
      out.push(`${pad}${name}: ${isEmpty(item) ? JSON.stringify(item) : scalar(item)}`);
    }
  }
}

/** A JSON value (a spec) as block YAML. */
export function toYaml(value) {
  if (value === null || typeof value !== "object") return `${scalar(value)}\n`;
  const out = [];
  lines(value, 0, out);
  return `${out.join("\n")}\n`;
}

/** The lines of `a` and `b` as a diff: [{op: " " | "-" | "+", text}], by their longest common
 * subsequence (specs are short: the quadratic table is fine). */
export function diffLines(a, b) {
  const x = a.split("\n");
  const y = b.split("\n");
  const n = x.length;
  const m = y.length;
  const table = Array.from({ length: n + 1 }, () => new Uint16Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      table[i][j] = x[i] === y[j] ? table[i + 1][j + 1] + 1 : Math.max(table[i + 1][j], table[i][j + 1]);
    }
  }
  const out = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (x[i] === y[j]) {
      out.push({ op: " ", text: x[i] });
      i++;
      j++;
    } else if (table[i + 1][j] >= table[i][j + 1]) {
      out.push({ op: "-", text: x[i++] });
    } else {
      out.push({ op: "+", text: y[j++] });
    }
  }
  while (i < n) out.push({ op: "-", text: x[i++] });
  while (j < m) out.push({ op: "+", text: y[j++] });
  return out.filter((d, k) => !(d.text === "" && k === out.length - 1));
}
