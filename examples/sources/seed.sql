-- The shop's orders: the table the sources example extracts (psql -f seed.sql).
DROP TABLE IF EXISTS orders;
CREATE TABLE orders (
    order_id       bigint PRIMARY KEY,
    sku            text NOT NULL,
    customer_email text,
    quantity       integer NOT NULL,
    amount         numeric(12, 2) NOT NULL,
    order_date     date NOT NULL,
    ordered_at     timestamptz,
    updated_at     timestamptz NOT NULL
);
INSERT INTO orders VALUES
    (1001, 'SKU-001', 'ada@example.com',     1,   12.50, '2024-05-01', '2024-05-01 09:15:00+02', '2024-05-01 09:15:00+02'),
    (1002, 'SKU-002', 'grace@example.com',   2,   39.98, '2024-05-01', '2024-05-01 10:02:00+02', '2024-05-01 10:02:00+02'),
    (1003, 'SKU-003', 'alan@example.org',    1,    7.99, '2024-05-02', '2024-05-02 11:40:00+02', '2024-05-02 11:40:00+02'),
    (1004, 'SKU-001', 'edsger@example.net',  3,   37.50, '2024-05-03', '2024-05-03 08:05:00+02', '2024-05-03 08:05:00+02'),
    (1005, 'SKU-004', 'barbara@example.com', 1,   59.00, '2024-05-03', '2024-05-03 16:30:00+02', '2024-05-03 16:30:00+02'),
    (1006, 'SKU-005', 'ken@example.com',     4,   31.96, '2024-05-04', '2024-05-04 12:00:00+02', '2024-05-04 12:00:00+02'),
    (1007, 'SKU-002', 'not-an-email',        1,   19.99, '2024-05-05', '2024-05-05 13:45:00+02', '2024-05-05 13:45:00+02'),
    (1008, 'SKU-006', 'linus@example.org',   2, 1234.56, '2024-06-01', '2024-06-01 09:00:00+02', '2024-06-01 09:00:00+02'),
    (1009, 'SKU-003', 'margaret@example.com', 0,   0.00, '2024-06-02', '2024-06-02 10:10:00+02', '2024-06-02 10:10:00+02'),
    (1010, 'SKU-007', 'dennis@example.com',  1,   25.00, '2024-06-03', '2024-06-03 18:20:00+02', '2024-06-03 18:20:00+02'),
    (1011, 'SKU-004', 'frances@example.net', 2,  118.00, '2024-06-04', '2024-06-04 07:55:00+02', '2024-06-04 07:55:00+02'),
    (1012, 'SKU-008', 'john@example.com',    1,    4.20, '2024-06-05', '2024-06-05 21:05:00+02', '2024-06-05 21:05:00+02');
