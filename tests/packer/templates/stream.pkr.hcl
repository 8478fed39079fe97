variable "lines" {
  type = number
}

source "null" "test" {
  communicator = "none"
}

build {
  sources = ["source.null.test"]

  provisioner "shell-local" {
    inline = ["echo first", "sleep 2", "seq -f 'line %g, of output' ${var.lines}"]
  }
}
