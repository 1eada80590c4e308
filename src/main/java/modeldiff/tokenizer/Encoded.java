package modeldiff.tokenizer;

import java.util.List;

/** Token ids and the piece each one stands for (as convert_ids_to_tokens shows them). */
public record Encoded(int[] ids, List<String> pieces) {
    public Encoded {
        ids = ids.clone();
        pieces = List.copyOf(pieces);
        if (ids.length != pieces.size()) throw new IllegalArgumentException(ids.length + " ids but " + pieces.size() + " pieces");
    }

    @Override
    public int[] ids() {
        return ids.clone();
    }

    public int length() {
        return ids.length;
    }
}
