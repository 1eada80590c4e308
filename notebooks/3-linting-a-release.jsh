//md # 3. Linting a release before running it
//md Some release bugs are visible without running anything: Phi-3 shipped sliding_window 2047 (vLLM issue 4380); several models ship pad_token_id equal to eos_token_id, so masking the pad masks EOS (transformers issue 23530); Llama 3 base has embedding rows that were never trained and give NaN when a prompt uses them (Unsloth issue 658). Here we plant each in a copy of a clean fixture and let `modeldiff lint` find it. The fixture folders themselves are never modified.
import modeldiff.lint.*;
import modeldiff.model.*;
import modeldiff.notebook.Nb;
import java.nio.file.*;
import java.util.*;
import com.fasterxml.jackson.databind.*;
import com.fasterxml.jackson.databind.node.*;
ObjectMapper json = new ObjectMapper();
Path copy(String fixture) throws Exception {
    Path to = Nb.tempDir("nb-lint-" + fixture);
    try (var s = Files.list(Path.of("src/test/resources/fixtures", fixture, "model"))) {
        for (Path p : s.toList()) Files.copy(p, to.resolve(p.getFileName()));
    }
    return to;
}
void edit(Path dir, java.util.function.Consumer<ObjectNode> change) throws Exception {
    ObjectNode cfg = (ObjectNode) json.readTree(dir.resolve("config.json").toFile());
    change.accept(cfg);
    Files.writeString(dir.resolve("config.json"), json.writerWithDefaultPrettyPrinter().writeValueAsString(cfg));
}
void lint(Path dir, int... tokens) {
    LintOptions o = LintOptions.defaults();
    if (tokens.length > 0) o = o.withTokens(tokens);
    for (Finding f : Linter.lint(dir, o).findings())
        if (f.severity() != Severity.INFO) System.out.println(f.severity() + " " + f.rule() + ": " + f.message());
}
//md A clean release first: no warning, no error.
lint(Path.of("src/test/resources/fixtures/llama/model"));
System.out.println("(clean)");
//md pad = EOS:
Path padEos = copy("llama");
edit(padEos, c -> c.put("pad_token_id", c.get("eos_token_id").asInt()));
lint(padEos);
//md Phi-3's window of 2047 (one less than a power of two), on a copy of the Phi-3 fixture:
Path window = copy("phi3");
edit(window, c -> c.put("sliding_window", 2047));
lint(window);
//md Untrained embedding rows: zero three rows of the embedding (as Llama 3 base ships its reserved tokens), then lint with a prompt that uses one of them.
Path untrained = copy("llama");
SafeTensorsFile st = SafeTensorsFile.open(untrained.resolve("model.safetensors"));
SafeTensorsWriter w = new SafeTensorsWriter();
for (TensorInfo t : st.tensors().values()) {
    double[] v = TensorStore.readDoubles(t, 0, t.elementCount());
    if (t.name().equals("model.embed_tokens.weight")) {
        int h = (int) t.shape()[1];
        for (int row : new int[]{250, 251, 252}) Arrays.fill(v, row * h, (row + 1) * h, 0.0);
    }
    w.add(t.name(), t.dtype(), t.shape(), v);
}
w.write(untrained.resolve("model.safetensors"));
lint(untrained, 1, 17, 251, 42);
