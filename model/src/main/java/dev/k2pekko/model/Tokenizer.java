package dev.k2pekko.model;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Deterministic greedy longest-match tokenizer for the task and tool-call language.
 *
 * <p>The vocabulary is, in this order: the special tokens ({@link #SPECIALS}), every printable ASCII
 * character (so any ASCII text encodes and {@code decode(encode(s)) == s}), then whole words such as
 * tool names ({@code calc.add}, {@code notes.write}) and keywords. Encoding scans left to right and
 * takes the longest vocabulary entry that matches at the current position; ties cannot happen because
 * entries are distinct strings. Anything outside ASCII 32..126 that is not in a word becomes
 * {@code <unk>}. Digits are always single characters, so numbers are spelled digit by digit and the
 * model sees the same pieces for every number.
 */
public final class Tokenizer {
  public static final String PAD = "<pad>", BOS = "<bos>", EOS = "<eos>", CALL = "<call>", RESULT = "<result>",
      ANSWER = "<answer>", SEP = "<sep>", UNK = "<unk>";
  public static final List<String> SPECIALS = List.of(PAD, BOS, EOS, CALL, RESULT, ANSWER, SEP, UNK);

  /** Tool names and keywords of the default task language, one token each. */
  public static final List<String> DEFAULT_WORDS = List.of(
      "calc.add", "calc.sub", "calc.mul", "calc.div", "notes.write", "notes.read", "notes.delete",
      "kv.put", "kv.get", "search.query", "calendar.add", "email.send", "files.read", "files.write",
      "true", "false", "null", "error", "ok", "key", "value", "text", "query", "task");

  private final List<String> vocab;
  private final Map<String, Integer> ids = new HashMap<>();
  private final int maxLen;

  private Tokenizer(List<String> vocab) {
    this.vocab = List.copyOf(vocab);
    int longest = 1;
    for (int i = 0; i < this.vocab.size(); i++) {
      if (ids.putIfAbsent(this.vocab.get(i), i) != null) {
        throw new IllegalArgumentException("duplicate vocabulary entry " + this.vocab.get(i));
      }
      longest = Math.max(longest, this.vocab.get(i).length());
    }
    this.maxLen = longest;
  }

  /** Specials, printable ASCII, then {@code words} (duplicates of single characters are skipped). */
  public static Tokenizer withWords(List<String> words) {
    var v = new java.util.LinkedHashSet<String>(SPECIALS); // a set: a list's contains made 100,000 user tools take minutes
    for (char c = 32; c < 127; c++) v.add(String.valueOf(c));
    for (String w : words) {
      if (w.length() > 1) v.add(w);
    }
    return new Tokenizer(new ArrayList<>(v));
  }

  public static Tokenizer standard() {
    return withWords(DEFAULT_WORDS);
  }

  public int vocabSize() {
    return vocab.size();
  }

  public List<String> vocabulary() {
    return Collections.unmodifiableList(vocab);
  }

  public int id(String token) {
    Integer id = ids.get(token);
    if (id == null) throw new IllegalArgumentException("not in vocabulary: " + token);
    return id;
  }

  public String token(int id) {
    return vocab.get(id);
  }

  public int[] encode(String text) {
    var out = new ArrayList<Integer>();
    int i = 0;
    while (i < text.length()) {
      int found = -1, len = 0;
      for (int l = Math.min(maxLen, text.length() - i); l >= 1; l--) {
        Integer id = ids.get(text.substring(i, i + l));
        if (id != null) {
          found = id;
          len = l;
          break;
        }
      }
      if (found < 0) {
        found = ids.get(UNK);
        len = 1;
      }
      out.add(found);
      i += len;
    }
    return out.stream().mapToInt(Integer::intValue).toArray();
  }

  public String decode(int[] tokens) {
    var sb = new StringBuilder();
    for (int t : tokens) sb.append(vocab.get(t));
    return sb.toString();
  }
}
