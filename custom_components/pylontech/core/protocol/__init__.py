"""Wire codecs: RS485 frames, CAN frames and console text to typed records."""
