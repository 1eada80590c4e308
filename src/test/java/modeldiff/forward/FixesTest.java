package modeldiff.forward;

import modeldiff.model.BadInputException;
import modeldiff.model.LayerSpec;
import org.junit.jupiter.api.Test;

import java.util.HashSet;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The fix ids as a typed value: each id parses to its enum constant, and the score-scale ids mean what they say. */
class FixesTest {
    private static final LayerSpec LAYER = new LayerSpec(0, 0, null, 0.125);

    @Test
    void attnScaleIsTheMultiplierAndAttnScalarTheInverseRoot() {
        assertEquals(0.25, Fixes.parse("attn.scale=0.25").attnScale(LAYER), 0);
        assertEquals(0.25, Fixes.parse("attn.scalar=16").attnScale(LAYER), 0);          // 1/sqrt(16)
        assertEquals(0.25, Fixes.parse("attn.scale=1/sqrt(16)").attnScale(LAYER), 0);   // the old spelling, written out
        assertEquals(0.125, Fixes.NONE.attnScale(LAYER), 0);
        assertTrue(Fixes.parse("attn.scalar=16").attnScaleOverridden());
        assertFalse(Fixes.NONE.attnScaleOverridden());
        assertThrows(BadInputException.class, () -> Fixes.parse("attn.scale=1/sqrt(-4)"));
        assertThrows(BadInputException.class, () -> Fixes.parse("attn.scale=1/x"));
    }

    @Test
    void everyIdIsOneConstantAndTheSetsDeriveFromTheEnums() {
        Set<String> ids = new HashSet<>();
        for (Fixes.Flag f : Fixes.Flag.values()) {
            assertTrue(ids.add(f.id), f.id);
            assertFalse(f.meaning.isBlank(), f.id);
            assertTrue(Fixes.parse(f.id).has(f), f.id);
        }
        for (Fixes.Key k : Fixes.Key.values()) {
            assertTrue(ids.add(k.id), k.id);
            assertFalse(k.meaning.isBlank(), k.id);
        }
        assertEquals(Fixes.Flag.values().length + Fixes.Key.values().length, Fixes.FLAGS.size() + Fixes.VALUED.size());
        assertThrows(BadInputException.class, () -> Fixes.parse("act.gelu_exact=1"));   // a flag takes no value
        assertThrows(BadInputException.class, () -> Fixes.parse("window"));             // a key needs one
    }

    @Test
    void theLaterGeluIdWins() {
        assertEquals(modeldiff.numeric.Activation.GELU_TANH, Fixes.parse("act.gelu_exact,act.gelu_tanh").activation(null));
        assertEquals(modeldiff.numeric.Activation.GELU_EXACT, Fixes.parse("act.gelu_tanh,act.gelu_exact").activation(null));
    }
}
