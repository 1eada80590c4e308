package modeldiff.cli;

import modeldiff.model.LayerSpec;
import modeldiff.model.Model;
import modeldiff.model.ModelConfig;
import modeldiff.model.TensorInfo;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;

@Command(name = "info", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Show how modeldiff reads a model: normalised config, per-layer attention, defaults taken, tensors.")
final class InfoCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "DIR|ORG/NAME[@REV]", converter = ModelLocator.Converter.class,
            description = ModelLocator.HELP)
    Path model;

    @picocli.CommandLine.Mixin
    GlobalOptions global;

    @Override
    public Integer call() {
        Model m = Model.open(model);
        ModelConfig c = m.config;
        System.out.printf("model      %s (%s)%n", m.dir, c.modelType);
        System.out.printf("shape      hidden %d, layers %d, heads %d (kv %d, head_dim %d), ffn %d, vocab %d%n",
                c.hiddenSize, c.numLayers, c.numHeads, c.numKvHeads, c.headDim, c.intermediateSize, c.vocabSize);
        System.out.printf("activation %s -> %s; norm %s eps %s; embed scale %s%n", c.activationName, c.activation.id(),
                c.family.norm, c.normEps, c.embedScale);
        System.out.printf("biases     qkv %s, o %s, mlp %s; tied embeddings %s%n", c.qkvBias, c.oBias, c.mlpBias, c.tieWordEmbeddings);
        System.out.printf("softcaps   attention %s, final %s%n", c.attnSoftcap, c.finalSoftcap);
        System.out.printf("tokens     bos %s, eos %s, pad %s; dtype %s%n", c.bosTokenIds, c.eosTokenIds, c.padTokenIds, c.declaredDtype);
        if (c.moe != null) System.out.printf("experts    %s%n", c.moe);
        if (c.mla != null) System.out.printf("attention  %s%n", c.mla);   // head_dim above is the rope part
        if (m.family.attentionSinks) System.out.println("attention  sinks (one learned logit per head in every softmax)");
        for (LayerSpec l : c.layers) {
            System.out.printf("layer %-3d  %s, scale %.6g, rope %s%s%n", l.index(),
                    l.sliding() ? "sliding window " + l.slidingWindow() : "full attention", l.attnScale(),
                    l.rope() == null ? "none (learned positions)" : l.nope() ? "none (NoPE layer)" : l.rope().describe(),
                    c.moe == null ? "" : c.moe.sparse(l.index()) ? ", experts" : ", dense MLP");
        }
        if (c.defaultsUsed.isEmpty()) System.out.println("defaults   none: every key came from config.json");
        else c.defaultsUsed.forEach(d -> System.out.println("default    " + d));
        Map<String, Integer> dtypes = new TreeMap<>();
        long params = 0;
        for (TensorInfo t : m.store.tensors().values()) {
            dtypes.merge(t.dtype().name(), 1, Integer::sum);
            params += t.elementCount();
        }
        System.out.printf("tensors    %d in %d file(s), %,d elements, dtypes %s%n", m.store.tensors().size(),
                m.store.files().size(), params, dtypes);
        quantNotes(m);
        return 0;
    }

    /** Which tensors were dequantized on load, and which layers (DeepSeek's MTP) are skipped on purpose. */
    private static void quantNotes(Model m) {
        Map<String, Integer> formats = new TreeMap<>();
        for (TensorInfo t : m.store.tensors().values())
            if (t.quantized() != null) formats.merge(t.quantized().format().name(), 1, Integer::sum);
        if (!formats.isEmpty())
            System.out.printf("quantized  %s tensor(s) dequantized on load (quant_method %s)%n", formats, m.store.quantization().method());
        int mtp = m.config.raw.path("num_nextn_predict_layers").asInt(0);
        if (mtp <= 0) return;
        java.util.regex.Pattern layer = java.util.regex.Pattern.compile("(model\\.)?layers\\.(\\d+)\\..*");
        int first = m.config.numLayers;
        long n = m.store.tensors().keySet().stream().map(layer::matcher).filter(x -> x.matches() && x.group(2).length() < 9)
                .mapToInt(x -> Integer.parseInt(x.group(2))).filter(i -> i >= first && i < first + mtp).count();
        System.out.printf("note       num_nextn_predict_layers %d: %d tensor(s) of the multi-token-prediction layer(s) from layer %d "
                + "are skipped (not part of the next-token forward pass)%n", mtp, n, m.config.numLayers);
    }
}
