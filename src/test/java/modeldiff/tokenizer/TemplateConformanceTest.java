package modeldiff.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import modeldiff.model.BadInputException;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Templates written to use what real releases' chat templates use (Qwen-, Llama-3.1-, Gemma-, Mistral-, Phi-3-like,
 * and a feature sampler), rendered by jinja2 the way transformers renders them (reference-impls/render_templates.py,
 * jinja2 3.1.6, ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, HF's tojson): our sandboxed
 * renderer must give the same text, or the same raise_exception message.
 */
class TemplateConformanceTest {
    static final Path FILE = Path.of("src/test/resources/tokenizers/templates/templates.json");

    @Test
    void sameTextAsJinja2() throws IOException {
        ObjectMapper json = new ObjectMapper();
        JsonNode root = json.readTree(FILE.toFile());
        List<String> failures = new ArrayList<>();
        int n = 0;
        for (JsonNode c : root.get("cases")) {
            n++;
            String name = c.get("template").asText() + "/" + c.get("chat").asText() + (c.get("add_generation_prompt").asBoolean() ? "/agp" : "")
                    + (c.get("tools").asBoolean() ? "/tools" : "");
            Map<String, Object> vars = new LinkedHashMap<>();
            vars.put("messages", json.convertValue(root.get("chats").get(c.get("chat").asText()), List.class));
            vars.put("add_generation_prompt", c.get("add_generation_prompt").asBoolean());
            vars.put("bos_token", "<s>");
            vars.put("eos_token", "</s>");
            vars.put("unk_token", "<unk>");
            vars.put("pad_token", "<pad>");
            if (c.get("tools").asBoolean()) vars.put("tools", json.convertValue(root.get("tools"), List.class));
            String got;
            try {
                got = new ChatTemplate(root.get("templates").get(c.get("template").asText()).asText()).render(vars);
            } catch (BadInputException e) {
                got = "ERROR " + e.getMessage();
            }
            String want = c.get("error").isNull() ? c.get("text").asText() : "ERROR chat template raised: " + c.get("error").asText();
            if (!want.equals(got)) failures.add(name + "\n  jinja2: " + json.writeValueAsString(want) + "\n  ours:   " + json.writeValueAsString(got));
        }
        assertEquals(List.of(), failures, failures.size() + " of " + n + " cases differ:\n" + String.join("\n", failures));
    }
}
