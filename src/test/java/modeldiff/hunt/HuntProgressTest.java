package modeldiff.hunt;

import modeldiff.Fixtures;
import modeldiff.model.Model;
import modeldiff.trace.TraceFiles;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The hunt reports its candidate runs as "what (i/n)", the form the CLI draws as a bar with counts and time left
 * (cli/Progress): every single fix is counted once, 1..n in order, n being the candidates the hunt reports trying.
 */
class HuntProgressTest {
    private static final Pattern COUNTED = Pattern.compile("(.*) \\((\\d+)/(\\d+)\\)");

    @Test
    void singleFixesAreCountedInOrder() throws Exception {
        Model m = Model.open(Fixtures.model("gemma2"));
        List<String> messages = Collections.synchronizedList(new ArrayList<>());
        Hunt.Result r = Hunt.run(m, TraceFiles.read(Fixtures.trace("gemma2", "planted-attn.no_softcap-float32.safetensors")),
                null, null, messages::add);
        List<Integer> singles = new ArrayList<>();
        for (String s : messages) {
            Matcher x = COUNTED.matcher(s);
            if (x.matches() && x.group(1).equals("trying fixes")) {
                assertEquals(r.candidates().size(), Integer.parseInt(x.group(3)), s);
                singles.add(Integer.parseInt(x.group(2)));
            }
        }
        assertTrue(r.candidates().size() > 1, r.candidates().toString());
        List<Integer> expected = new ArrayList<>();
        for (int i = 1; i <= r.candidates().size(); i++) expected.add(i);
        assertEquals(expected, singles, messages.toString());
    }
}
