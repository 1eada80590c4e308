package modeldiff.hunt;

import modeldiff.Fixtures;
import modeldiff.forward.Fixes;
import modeldiff.model.Model;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CatalogTest {
    @Test
    void everyCatalogIdParsesAsAFix() {
        for (Catalog.Entry e : Catalog.ENTRIES) {
            String id = e.id().replace("=V", "=1").replace("=F", "=0.5").replace("=S", "=64").replace("=W", "=8");
            Fixes.parse(id);
            assertNotNull(Catalog.entry(id), id);
        }
    }

    @Test
    void candidatesNeverRepeatTheConfigsOwnValue() {
        // gemma2's fixture: query_pre_attn_scalar 24, window 4, softcaps set, tanh GELU, unit-offset norms.
        Model m = Model.open(Fixtures.model("gemma2"));
        List<String> c = Catalog.candidates(m, true, null);
        assertTrue(c.contains("attn.no_softcap") && c.contains("logits.no_softcap") && c.contains("act.gelu_exact"));
        assertTrue(c.contains("attn.scalar=16"), c.toString());           // head_dim, differs from the config's 24
        assertFalse(c.contains("attn.scalar=24"), c.toString());
        assertFalse(c.contains("window=4"), c.toString());
        assertTrue(c.contains("window=3") && c.contains("window=5") && c.contains("window=8"), c.toString());
        assertTrue(c.contains("norm.no_unit_offset") && !c.contains("norm.unit_offset"));
        assertFalse(c.contains("act.gelu_tanh"));
        // The float64 reference cannot express rounding choices.
        assertFalse(Catalog.candidates(m, false, null).contains("norm.cast_before_weight"));
    }
}
