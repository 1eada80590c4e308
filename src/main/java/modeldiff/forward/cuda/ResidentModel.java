package modeldiff.forward.cuda;

import modeldiff.model.Model;
import modeldiff.numeric.Precision;

/** A release with every weight uploaded once to the device. */
public final class ResidentModel extends DeviceModel {
    private ResidentModel(Model model, Precision p) {
        super(model.config, p, model);
    }

    public static ResidentModel upload(Model model, boolean bf16) {
        return upload(model, bf16 ? Precision.BF16 : Precision.FP32);
    }

    /** In dtype p: fp32, bf16 or fp16. */
    public static ResidentModel upload(Model model, Precision p) {
        return building(new ResidentModel(model, p), dm -> {
            dm.uploadOuterWeights(model);
            for (int i = 0; i < model.config.numLayers; i++) dm.layers.add(dm.layer(model.layer(i), dm::residentLinear));
            dm.uploadMoe(model);
        });
    }

    /** Spread over device slots as {@code where} says (issue #18; {@link DeviceModel#uploadSplit}). */
    public static ResidentModel upload(Model model, Precision p, Placement where) {
        return building(new ResidentModel(model, p), dm -> {
            dm.placement = where;
            dm.uploadSplit(model, dm::residentLinear);
        });
    }
}
