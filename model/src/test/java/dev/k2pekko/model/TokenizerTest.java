package dev.k2pekko.model;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

class TokenizerTest {
  final Tokenizer tok = Tokenizer.standard();

  @Test
  void roundTripsAnyAscii() {
    String s = "<bos>task: add 12 and 30<call>calc.add(12,30)<result>42<answer>42<eos>";
    assertEquals(s, tok.decode(tok.encode(s)));
  }

  @Test
  void toolNamesAndSpecialsAreSingleTokens() {
    int[] ids = tok.encode("<call>notes.write(key,\"x\")");
    assertEquals(tok.id("<call>"), ids[0]);
    assertEquals(tok.id("notes.write"), ids[1]);
    assertEquals(tok.id("("), ids[2]);
    assertEquals(tok.id("key"), ids[3]);
  }

  @Test
  void digitsAreSpelledOneByOne() {
    int[] ids = tok.encode("2024");
    assertEquals(4, ids.length);
    assertEquals("0", tok.token(ids[1]));
  }

  @Test
  void longestMatchWinsAndPrefixesStillEncode() {
    // "calc." is not a word: it falls back to characters, while "calc.add" is one token
    assertEquals(5, tok.encode("calc.").length);
    assertEquals(1, tok.encode("calc.add").length);
    assertEquals(2, tok.encode("calc.adds").length);
  }

  @Test
  void nonAsciiBecomesUnknown() {
    assertArrayEquals(new int[] {tok.id("a"), tok.id(Tokenizer.UNK), tok.id("b")}, tok.encode("a\u00e9b"));
  }

  @Test
  void vocabularyIsDeterministicAndSmall() {
    assertEquals(Tokenizer.standard().vocabulary(), tok.vocabulary());
    assertEquals(0, tok.id(Tokenizer.PAD));
    assertEquals(8 + 95 + Tokenizer.DEFAULT_WORDS.size(), tok.vocabSize());
  }
}
