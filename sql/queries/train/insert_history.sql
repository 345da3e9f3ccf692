-- Per-epoch losses and learning rate of a model (from the registered Arrow table history_rows).
INSERT INTO ml.history (model_id, epoch, loss, val_loss, learning_rate, seconds)
SELECT model_id, epoch, loss, val_loss, learning_rate, seconds FROM history_rows;
