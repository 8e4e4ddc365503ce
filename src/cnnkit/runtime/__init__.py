"""What training and the users of a trained model share: where a model computes
(``device``), the processes it computes with (``distributed``), and batched inference
(``inference``)."""
