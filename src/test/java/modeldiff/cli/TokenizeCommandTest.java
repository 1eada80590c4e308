package modeldiff.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import modeldiff.trace.TraceFiles;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The tokenize/tokens contract and text input on the other commands, against the HF fixtures
 * (src/test/resources/tokenizers, reference-impls/tokenizer_fixtures.py on transformers 5.17).
 */
class TokenizeCommandTest {
    static final Path TOK = Path.of("src/test/resources/tokenizers");
    static final Path DEMO = Path.of("src/main/resources/modeldiff/demo/model");
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    static CliRun run(String... args) {
        return MalformedCorpusTest.run(args);
    }

    static JsonNode expected(String release) throws IOException {
        return JSON.readTree(TOK.resolve(release).resolve("expected.json").toFile());
    }

    @Test
    void jsonlIdsEqualAutoTokenizer() throws IOException {
        for (String release : new String[]{"bpe", "sp-unigram"}) {
            Path out = tmp.resolve(release + ".json");
            CliRun r = run("tokenize", "--model", TOK.resolve(release).toString(), "--jsonl", TOK.resolve("corpus.jsonl").toString(),
                    "--json", out.toString());
            assertEquals(0, r.code(), r.err());
            assertEquals(expected(release).get("fast"), JSON.readTree(out.toFile()).get("ids"), release);
        }
    }

    @Test
    void slowJsonlIdsEqualSentencePiece() throws IOException {
        Path out = tmp.resolve("slow.json");
        CliRun r = run("tokenize", "--model", TOK.resolve("sp-bpe").toString(), "--jsonl", TOK.resolve("corpus.jsonl").toString(),
                "--slow", "--json", out.toString());
        assertEquals(0, r.code(), r.err());
        JsonNode got = JSON.readTree(out.toFile()).get("ids"), exp = expected("sp-bpe");
        for (int i = 0; i < got.size(); i++) {
            JsonNode sp = exp.get("slow").get(i);
            assertEquals(1, got.get(i).get(0).asInt(), "BOS first, as the release's tokenizer.json adds it");
            assertEquals(sp.size() + 1, got.get(i).size());
            for (int k = 0; k < sp.size(); k++) assertEquals(sp.get(k), got.get(i).get(k + 1));
        }
    }

    @Test
    void chatTextAndIdsEqualApplyChatTemplate() throws IOException {
        for (String release : new String[]{"bpe-bos-doubled", "sp-unigram"})
            for (JsonNode c : expected(release).get("chats")) {
                Path chat = tmp.resolve("chat.json"), out = tmp.resolve("out.json");
                Files.writeString(chat, c.get("messages").toString());
                Files.deleteIfExists(out);
                CliRun r = c.get("add_generation_prompt").asBoolean()
                        ? run("tokenize", "--model", TOK.resolve(release).toString(), "--chat", chat.toString(), "--add-generation-prompt", "--json", out.toString())
                        : run("tokenize", "--model", TOK.resolve(release).toString(), "--chat", chat.toString(), "--json", out.toString());
                assertEquals(0, r.code(), r.err());
                JsonNode got = JSON.readTree(out.toFile());
                assertEquals(c.get("text"), got.get("text"));
                assertEquals(c.get("ids"), got.get("ids"));
            }
    }

    @Test
    void hostileTemplateExitsTwoWithOneLine() throws IOException {
        Path rel = copy("bpe");
        ObjectNode cfg = (ObjectNode) JSON.readTree(rel.resolve("tokenizer_config.json").toFile());
        cfg.put("chat_template", "{{ ''.getClass().forName('java.lang.Runtime').getRuntime().exec('touch " + tmp.resolve("pwned") + "') }}");
        Files.writeString(rel.resolve("tokenizer_config.json"), cfg.toString());
        Path chat = tmp.resolve("chat.json");
        Files.writeString(chat, "[{\"role\": \"user\", \"content\": \"hi\"}]");
        CliRun r = run("tokenize", "--model", rel.toString(), "--chat", chat.toString());
        assertEquals(2, r.code(), r.out() + r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        assertTrue(r.err().startsWith("modeldiff: chat template: attribute 'class' of a string is not allowed")
                || r.err().contains("not allowed"), r.err());
        assertTrue(Files.notExists(tmp.resolve("pwned")));
    }

    @Test
    void badJsonlLineIsBadInput() throws IOException {
        Path f = tmp.resolve("bad.jsonl");
        Files.writeString(f, "\"ok\"\n{\"not\": \"a string\"}\n");
        CliRun r = run("tokenize", "--model", TOK.resolve("bpe").toString(), "--jsonl", f.toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("line 2: expected a JSON string"), r.err());
    }

    @Test
    void humanReadableShowsPieces() {
        CliRun r = run("tokenize", "--model", DEMO.toString(), "--text", "def f(x):");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("256:\"<bos>\" 100:\"d\" 101:\"e\" 102:\"f\" 32:\"Ġ\""), r.out());
    }

    @Test
    void tokensExitCodes() {
        assertEquals(1, run("tokens", "--model", TOK.resolve("sp-bpe").toString()).code(), "fast and slow disagree: a finding");
        assertEquals(0, run("tokens", "--model", TOK.resolve("bpe").toString(), "--vs", TOK.resolve("bpe-bos-doubled").toString()).code());
        assertEquals(2, run("tokens", "--model", TOK.resolve("bpe").toString()).code(), "no tokenizer.model: bad input");
    }

    @Test
    void traceKeepsTheTextBesideTheIds() {
        Path out = tmp.resolve("t.safetensors");
        CliRun r = run("trace", "--model", DEMO.toString(), "--impl", "reference", "--text", "def f(x):", "--out", out.toString());
        assertEquals(0, r.code(), r.err());
        var t = TraceFiles.read(out);
        assertEquals("def f(x):", t.extra().get("text"));
        assertEquals("[256, 100, 101, 102, 32, 102, 40, 120, 41, 58]", java.util.Arrays.toString(t.tokens()));
    }

    @Test
    void compareOnTheDemoFromText() {
        CliRun r = run("compare", "--model", DEMO.toString(), "--reference", "reference", "--candidate", "lowp:fp32",
                "--text", "def f(x):");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("input: 10 tokens from the release's tokenizer: \"def f(x):\""), r.out());
    }

    @Test
    void demoRunsOnYourText() {
        CliRun r = run("demo", "--out", tmp.resolve("demo").toString(), "--text", "Return the number");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("6. your text \"Return the number\" (18 tokens), exact GELU planted in our bf16 pass: diverges first at layer 0"), r.out());
    }

    @Test
    void huntRefusesATraceMadeOnOtherTokens() {
        CliRun r = run("hunt", "--model", DEMO.toString(), "--target",
                "src/main/resources/modeldiff/demo/traces/hf-bfloat16.safetensors", "--text", "not the trace's text");
        assertEquals(2, r.code(), r.out() + r.err());
        assertTrue(r.err().contains("its tokens are not the text's"), r.err());
    }

    /** The demo trace was made on BOS + the bytes of this text (train_demo.py's tokens): the demo tokenizer agrees. */
    @Test
    void huntAcceptsTheTextTheTraceWasMadeOn() {
        CliRun r = run("hunt", "--model", DEMO.toString(), "--target",
                "src/main/resources/modeldiff/demo/traces/hf-bfloat16.safetensors", "--fixes", "act.gelu_exact",
                "--text", "The quick brown fox jumps over the lazy dog. It returns the");
        assertTrue(r.code() == 0 || r.code() == 1, r.out() + r.err());
        assertTrue(!r.err().contains("its tokens are not"), r.err());
    }

    @Test
    void textAndTokensTogetherIsBadInput() {
        CliRun r = run("trace", "--model", DEMO.toString(), "--impl", "reference", "--text", "a", "--tokens", "1,2",
                "--out", tmp.resolve("x.safetensors").toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("give one of --tokens, --tokens-from, --text/--text-file/--chat"), r.err());
    }

    private Path copy(String release) throws IOException {
        Path dst = tmp.resolve(release);
        Files.createDirectories(dst);
        try (Stream<Path> s = Files.list(TOK.resolve(release))) {
            for (Path p : s.toList()) Files.copy(p, dst.resolve(p.getFileName()));
        }
        return dst;
    }
}
