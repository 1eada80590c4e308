package modeldiff.release;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import modeldiff.model.BadInputException;
import modeldiff.util.AtomicFiles;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Known deviations a reviewer accepted, one JSON file per release ({@code DIR/RELEASE.json}):
 * {@code {"accepted": [{"check": "impl:torch:fp16", "reason": "..."}]}}. Kept outside the model folder (which is
 * never written to) and changed only by `modeldiff baseline accept`, so every acceptance has a reason and a diff.
 */
public final class Baseline {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    /** The one default folder: `modeldiff baseline` writes here, and `modeldiff check` and ModelReleaseTest read here. */
    public static final String DEFAULT_DIR_TEXT = "src/test/resources/baselines";
    public static final Path DEFAULT_DIR = Path.of(DEFAULT_DIR_TEXT);
    private final Path dir;

    public Baseline(Path dir) {
        this.dir = dir;
    }

    public Path file(String release) {
        return dir.resolve(release + ".json");
    }

    /** The reviewer's reason for accepting a failure of {@code check}, or null. */
    public String reason(String release, String check) {
        Path f = file(release);
        if (!Files.isRegularFile(f)) return null;
        try {
            JsonNode root = JSON.readTree(f.toFile());
            for (JsonNode a : root.path("accepted"))
                if (check.equals(a.path("check").asText())) return a.path("reason").asText("(no reason given)");
            return null;
        } catch (IOException e) {
            throw BadInputException.at(f, "file", "not valid JSON: " + e.getMessage());
        }
    }

    public void accept(String release, String check, String reason) {
        if (reason == null || reason.isBlank()) throw new BadInputException("--reason is required: every accepted deviation says why");
        Path f = file(release);
        ObjectNode root;
        try {
            root = Files.isRegularFile(f) ? (ObjectNode) JSON.readTree(f.toFile()) : JSON.createObjectNode();
        } catch (IOException | ClassCastException e) {
            throw BadInputException.at(f, "file", "not a baseline file");
        }
        ArrayNode acc = root.has("accepted") ? (ArrayNode) root.get("accepted") : root.putArray("accepted");
        for (int i = acc.size() - 1; i >= 0; i--) if (check.equals(acc.get(i).path("check").asText())) acc.remove(i);
        acc.addObject().put("check", check).put("reason", reason);
        try {
            AtomicFiles.writeString(f, JSON.writeValueAsString(root) + "\n");
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
